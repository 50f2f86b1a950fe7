"""Kubernetes resource quantities ("500m", "2", "1.5Gi"), parsed as the API server does.

The grammar is Kubernetes' (k8s.io/apimachinery resource.Quantity): a signed decimal
number followed by a binary-SI suffix (Ki..Ei), a decimal-SI suffix (n, u, m, k, M..E)
or a decimal exponent (e3, E-2). Parsing here, before anything is created, turns a typo
into a clear error instead of an API-server rejection halfway through `pulumi up`.
"""

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)


def parse_quantity(text: str) -> Decimal:
    """The value of a quantity in base units (cores, bytes); ValueError if malformed."""
    if not isinstance(text, str):
        raise ValueError(f"not a string: {text!r}")
    match = _QUANTITY.match(text.strip())
    if not match or text != text.strip():
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    try:
        number = Decimal(match["number"])
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"not a Kubernetes quantity: {text!r}") from exc
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * (Decimal(10) ** int(suffix[1:]))
