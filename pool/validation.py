"""Checks on user input. Each takes the key to name in its error, so the stack-config
loader names config keys and library callers name argument fields, with one rule each."""

import ipaddress
import re
from decimal import Decimal

from .errors import PoolConfigError
from .quantity import parse_quantity

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# An image reference pinned to a tag or digest: registry/path:tag or ...@sha256:hex.
_PINNED_IMAGE = re.compile(
    r"^[a-z0-9][a-z0-9._/-]*(:[0-9]+/[a-z0-9._/-]+)?(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(@sha256:[0-9a-f]{64})?$"
)


def dns1123_label(key: str, value: object, max_length: int = 63) -> str:
    if not isinstance(value, str) or len(value) > max_length or not _DNS1123_LABEL.match(value):
        raise PoolConfigError(
            key, value,
            f"a DNS-1123 label: at most {max_length} lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
        )
    return value


_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def dns1123_subdomain(key: str, value: object) -> str:
    if not isinstance(value, str) or len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
        raise PoolConfigError(key, value, "a DNS-1123 subdomain: at most 253 lowercase letters, "
                                          "digits, '-' and '.' (e.g. standard-rwo)")
    return value


def cidr(key: str, value: object) -> str:
    try:
        ipaddress.ip_network(value, strict=True)  # type: ignore[arg-type]
        return value  # type: ignore[return-value]
    except (TypeError, ValueError):
        raise PoolConfigError(key, value, "an IPv4 or IPv6 network in CIDR notation with no host "
                                          "bits set (e.g. 192.0.2.0/24 or 198.51.100.7/32)") from None


# Never reachable from a job: link-local addresses, where clouds serve instance metadata
# (169.254.169.254, the classic route to the node's cloud credentials) and node-local agents.
LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
# Where a cluster's pod, Service and API-server addresses live, in practically every cluster
# (RFC 1918, the shared address space some CNIs use, IPv6 unique local): left out of a
# broader network a job may reach, unless listed on their own.
PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                   "100.64.0.0/10", "fc00::/7"))


def egress_cidr(key: str, value: object) -> str:
    """A network jobs on workers may reach: any CIDR but one inside the link-local range."""
    cidr(key, value)
    network = ipaddress.ip_network(value)  # type: ignore[arg-type]
    if any(network.version == n.version and network.subnet_of(n) for n in LINK_LOCAL):
        raise PoolConfigError(key, value, "a network outside the link-local ranges 169.254.0.0/16 and "
                                          "fe80::/10, which hold the cloud's instance metadata: jobs never "
                                          "reach them")
    return value  # type: ignore[return-value]


def egress_except(value: str) -> list[str]:
    """What a NetworkPolicy's ipBlock of `value` must leave out: the link-local and private
    ranges inside it (a private network listed on its own is allowed as it is)."""
    network = ipaddress.ip_network(value)
    return [str(n) for n in (*LINK_LOCAL, *PRIVATE)
            if n.version == network.version and n != network and n.subnet_of(network)]


def one_of(key: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise PoolConfigError(key, value, f"one of {', '.join(allowed)}")
    return value  # type: ignore[return-value]


def worker_count(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PoolConfigError(key, value, "a whole number >= 0")
    return value


def password_version(key: str, value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,63}", value):
        raise PoolConfigError(key, value, "1 to 63 letters, digits, '.', '_' or '-' (e.g. 2 or 2026-11)")
    return value


def grace_period(key: str, value: object, minimum: int, maximum: int = 86400) -> int:
    return whole_number_in(key, value, minimum, maximum, "seconds")


def whole_number_in(key: str, value: object, minimum: int, maximum: int, unit: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise PoolConfigError(key, value, f"a whole number of {unit} from {minimum} to {maximum}")
    return value


def quantity(key: str, value: object, minimum: Decimal, unit: str) -> str:
    """A Kubernetes quantity of at least `minimum` base units; returned unchanged."""
    try:
        amount = parse_quantity(value)  # type: ignore[arg-type]
    except ValueError:
        amount = None
    if amount is None or amount < minimum:
        raise PoolConfigError(
            key, value, f"a Kubernetes quantity of at least {minimum} {unit} (e.g. {_example(unit)})"
        )
    return value  # type: ignore[return-value]


def config_text(value: object) -> object:
    """`pulumi config set --path resources.worker.cpu 2` stores the number 2: take it as "2"."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def whole_number(check, allowed: str):
    """`check` on a whole number, which stack config gives as text (" 7 " is 7, "1.5" is
    refused with `allowed`)."""
    def rule(key: str, value: object) -> object:
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise PoolConfigError(key, value, allowed) from None
        return check(key, value)
    return rule


def _example(unit: str) -> str:
    return "'500m' or '2'" if unit == "CPU" else "'512Mi' or '2Gi'"


def pinned_image(key: str, value: object) -> str:
    ok = isinstance(value, str) and _PINNED_IMAGE.match(value)
    tag = value.rsplit("/", 1)[-1].partition("@")[0].partition(":")[2] if ok else ""
    digest = "@sha256:" in value if ok else False
    if not ok or (not digest and tag in ("", "latest")):
        raise PoolConfigError(
            key, value, "an image pinned to a version tag or digest (not 'latest'), "
            "e.g. 'htcondor/execute:25.0.15-el9'",
        )
    return value


def pool_name(key: str, value: object) -> str:
    # COLLECTOR_NAME is one config line: no newlines, and no quotes or '$' that HTCondor's
    # config language would treat specially.
    if not isinstance(value, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,99}$", value):
        raise PoolConfigError(
            key, value, "1 to 100 characters: letters, digits, spaces and . _ @ -, "
            "starting with a letter or digit",
        )
    return value


def known_keys(key: str, value: object, allowed: tuple[str, ...]) -> dict:
    """A mapping whose keys are all in `allowed` (catches typos in structured values)."""
    if not isinstance(value, dict):
        raise PoolConfigError(key, value, f"an object with keys among {', '.join(allowed)}")
    for name in value:
        if name not in allowed:
            raise PoolConfigError(f"{key}.{name}", value[name], f"a key among {', '.join(allowed)}")
    return value


# The component name, with "-central-manager" added, must still be a valid Service name: a
# DNS-1035 label (starts with a letter) of at most 63 characters. And with "-worker" added,
# a Deployment whose pods keep distinct hostnames: pods are named DEPLOYMENT-<hash, up to
# 10>-<5>, and a pod's hostname, which HTCondor names its slots after, is that cut to 63
# characters, so a longer Deployment's pods would lose their random suffix and share one.
COMPONENT_NAME_LIMIT = min(63 - len("-central-manager"), 63 - len("-0123456789-abcde") - len("-worker"))


def component_name(key: str, value: object) -> str:
    limit = COMPONENT_NAME_LIMIT
    if not (isinstance(value, str) and value[:1].isalpha()):
        raise PoolConfigError(key, value, f"a DNS-1123 label of at most {limit} characters "
                                          "that starts with a lowercase letter")
    return dns1123_label(key, value, max_length=limit)
