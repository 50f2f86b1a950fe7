"""Where a role's pods may run: nodeSelector, tolerations, affinity and priorityClassName,
checked as Kubernetes would check them (so a typo fails before anything is created, naming
the key) and rendered into the pod spec unchanged."""

import re

from . import validation
from .errors import PoolConfigError

KEYS = ("nodeSelector", "tolerations", "affinity", "priorityClassName")
TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
TOLERATION_OPERATORS = ("Exists", "Equal")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
AFFINITY_KEYS = ("nodeAffinity", "podAffinity", "podAntiAffinity")

# Kubernetes' qualified names (label keys) and label values (apimachinery validation).
_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_KEY = ("a label key: an optional DNS subdomain prefix and '/', then at most 63 letters, digits, "
              "'-', '_' or '.', starting and ending with a letter or digit (e.g. nvidia.com/gpu.present)")
_LABEL_VALUE = ("a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a "
                "letter or digit, or empty")


def label_key(name: str, key: object) -> str:
    if isinstance(key, str):
        prefix, _, local = key.rpartition("/")
        try:
            if prefix or "/" in key:
                validation.dns1123_subdomain(name, prefix)
        except PoolConfigError:
            raise PoolConfigError(name, key, _LABEL_KEY) from None
        if len(local) <= 63 and _NAME.match(local):
            return key
    raise PoolConfigError(name, key, _LABEL_KEY)


def label_value(name: str, value: object) -> str:
    if isinstance(value, bool) or isinstance(value, (int, float)):
        value = str(value).lower()  # `pulumi config set --path ...nodeSelector.gpu true` stores a boolean
    if isinstance(value, str) and (value == "" or (len(value) <= 63 and _NAME.match(value))):
        return value
    raise PoolConfigError(name, value, _LABEL_VALUE)


def toleration(name: str, value: object) -> dict:
    given = validation.known_keys(name, value, TOLERATION_KEYS)
    operator = given.get("operator", "Equal")
    validation.one_of(f"{name}.operator", operator, TOLERATION_OPERATORS)
    checked: dict = {"operator": operator}
    if "key" in given:
        checked["key"] = label_key(f"{name}.key", given["key"])
    elif operator != "Exists":
        raise PoolConfigError(f"{name}.key", None, "a taint's key, unless operator is Exists (which "
                                                   "then tolerates every taint)")
    if "value" in given:
        if operator == "Exists" and given["value"] != "":
            raise PoolConfigError(f"{name}.value", given["value"], "no value with operator Exists")
        checked["value"] = label_value(f"{name}.value", given["value"])
    if "effect" in given and given["effect"] != "":
        checked["effect"] = validation.one_of(f"{name}.effect", given["effect"], TAINT_EFFECTS)
    if "tolerationSeconds" in given:
        seconds = given["tolerationSeconds"]
        if checked.get("effect") != "NoExecute":
            raise PoolConfigError(f"{name}.tolerationSeconds", seconds, "no tolerationSeconds unless effect "
                                                                          "is NoExecute")
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
            raise PoolConfigError(f"{name}.tolerationSeconds", seconds, "a whole number of seconds >= 0")
        checked["tolerationSeconds"] = seconds
    return checked


def placement(name: str, value: object) -> dict:
    """One role's (or worker pool's) placement, checked; only the keys given."""
    given = validation.known_keys(name, {} if value is None else value, KEYS)
    checked: dict = {}
    if "nodeSelector" in given:
        selector = given["nodeSelector"]
        if not isinstance(selector, dict):
            raise PoolConfigError(f"{name}.nodeSelector", selector,
                                  'an object of node labels, e.g. {"nvidia.com/gpu.present": "true"}')
        checked["nodeSelector"] = {label_key(f"{name}.nodeSelector.{key}", key):
                                   label_value(f"{name}.nodeSelector.{key}", v) for key, v in selector.items()}
    if "tolerations" in given:
        tolerations = given["tolerations"]
        if not isinstance(tolerations, list):
            raise PoolConfigError(f"{name}.tolerations", tolerations,
                                  'a list of tolerations, e.g. [{"key": "gpu", "operator": "Exists", '
                                  '"effect": "NoSchedule"}]')
        checked["tolerations"] = [toleration(f"{name}.tolerations[{i}]", t) for i, t in enumerate(tolerations)]
    if "affinity" in given:
        # Its inner structure is Kubernetes' own (the schema tests check the rendered pods).
        checked["affinity"] = validation.known_keys(f"{name}.affinity", given["affinity"], AFFINITY_KEYS)
    if "priorityClassName" in given:
        checked["priorityClassName"] = validation.dns1123_subdomain(f"{name}.priorityClassName",
                                                                    given["priorityClassName"])
    return checked

