"""HTCondorPool as a Pulumi package, `htcondor`, for programs in any language: its schema,
built from the declarations of pool/settings.py and pool/outputs.py, and the provider that
constructs the pool from a program's inputs. The plugin folder package/ serves it
(`pulumi package add PATH/package`); docs/package.md explains the design.

The schema is built here rather than inferred from annotations by the Python SDK's
component_provider_host, which cannot describe these inputs (tuples, bare dicts), ignores
their defaults, names the type after the class (HTCondorPool, where Python stacks' URNs
say Pool) and takes descriptions from comments nobody else reads. The provider is the
SDK's own machinery under component_provider_host (pulumi.provider.Provider, served by
pulumi.provider.main).

Inputs are the stack-config keys but `name` (a program names the resource), in the same
camelCase; each is checked by its key's rule, naming the input as the program spells it,
so bad input fails in one line as stack config does.
"""

import inspect
import json
import sys

import pulumi
import pulumi.provider
from pulumi.errors import InputPropertiesError

from .args import pool_args_by_key
from .component import HTCondorPool
from .errors import PoolConfigError
from .outputs import OUTPUTS
from .settings import ARG_SETTINGS, BY_KEY, Setting

PACKAGE = "htcondor"
POOL = f"{PACKAGE}:index:Pool"  # HTCondorPool's own type: a program's tree is a Python stack's
# Served from a checkout, not published: the package is what the checkout holds.
VERSION = "0.0.0"
# The schema's type of each settings type; objects' members are checked by their rules.
TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "array": {"type": "array", "items": {"type": "string"}},
    "object": {"type": "object", "additionalProperties": {"$ref": "pulumi.json#/Any"}},
}


# ---- the schema --------------------------------------------------------------------------
class _NotAValue:
    """What no rule accepts: a rule refusing it says what it allows, in its error's words."""


def allowed(setting: Setting) -> str:
    """What the key's rule allows, as its error message says it."""
    try:
        setting.rule(setting.key, _NotAValue())
    except PoolConfigError as refusal:
        return refusal.allowed
    raise AssertionError(f"{setting.key}'s rule accepts anything")


def shown_default(setting: Setting) -> str:
    """The default as README's table shows it, spelled out where the table points below it."""
    return f"`{json.dumps(setting.default)}`" if setting.shown_default == "see below" else setting.shown()


def input_property(setting: Setting) -> dict:
    prop = dict(TYPES[setting.type])
    if setting.default is not None and setting.type in ("string", "integer", "boolean"):
        prop["default"] = setting.default
    prop["description"] = (f"{setting.description}\n\nAllowed: {allowed(setting)}.\n\n"
                           f"Default: {shown_default(setting)}.")
    return prop


def schema() -> dict:
    """The package's schema: one component, htcondor:index:Pool, whose every input is
    optional (each has a default) and whose outputs are README's."""
    pool = {
        "isComponent": True,
        "description": inspect.cleandoc(HTCondorPool.__doc__ or ""),
        "inputProperties": {s.key: input_property(s) for s in ARG_SETTINGS},
        "requiredInputs": [],
        "properties": {o.property: {**o.type, "description": o.description, **({"secret": True} if o.secret else {})}
                       for o in OUTPUTS},
        "required": [o.property for o in OUTPUTS if o.always],
    }
    return {
        "name": PACKAGE,
        "displayName": "HTCondor pool",
        "version": VERSION,
        "description": "An HTCondor pool on Kubernetes: central manager, schedd, workers, their credentials, "
                       "NetworkPolicies, metrics and burst workers, from one component.",
        "resources": {POOL: pool},
        # As component_provider_host's schemas: SDKs take the package's version as given.
        "language": {language: {"respectSchemaVersion": True}
                     for language in ("nodejs", "python", "csharp", "java", "go")},
    }


# ---- construct ---------------------------------------------------------------------------
class _Unresolved:
    """An input that is an Output, shown by what it is in the error naming it."""

    def __repr__(self) -> str:
        return "an Output (another resource's output, or a secret)"


def _is_output(value: object) -> bool:
    if isinstance(value, (pulumi.Output, pulumi.output.Unknown)):
        return True
    if isinstance(value, dict):
        return any(_is_output(v) for v in value.values())
    if isinstance(value, list):
        return any(_is_output(v) for v in value)
    return False


def _as_json(value: object) -> object:
    """A value as JSON would give it: the engine sends every number as a float, so a whole
    number is an int again (as `workers: 2` in stack config is)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    return value


def pool_inputs(inputs: dict) -> dict[str, object]:
    """The inputs a program gave, by key, as the rules take them. Each must be known when the
    pool is constructed: every object's name and the pool's configuration derive from it,
    as from stack config."""
    given = {}
    for key, value in inputs.items():
        if value is None:
            continue  # unset
        value = _as_json(value)
        if key not in BY_KEY or key == "name":
            raise PoolConfigError(key, value, f"a known input: one of {', '.join(s.key for s in ARG_SETTINGS)}")
        if _is_output(value):
            raise PoolConfigError(key, _Unresolved(), "a value written in the program (to wait for another "
                                                      "resource, give the pool `dependsOn` it)")
        given[key] = value
    return given


class PoolProvider(pulumi.provider.Provider):
    """Constructs htcondor:index:Pool: the program's inputs checked as stack config is, then
    the HTCondorPool a Python stack would have, with its outputs."""

    def __init__(self) -> None:
        super().__init__(VERSION, json.dumps(schema()))

    def construct(self, name: str, resource_type: str, inputs: pulumi.Inputs,
                  options: pulumi.ResourceOptions | None = None) -> pulumi.provider.ConstructResult:
        if resource_type != POOL:
            raise ValueError(f"unknown resource type {resource_type}; this package has only {POOL}")
        try:
            component, args = pool_args_by_key({**pool_inputs(dict(inputs)), "name": name}, lambda key: key)
        except PoolConfigError as refusal:
            # The engine reports it in one line, "htcondor:index:Pool resource 'NAME' has a
            # problem: MESSAGE", not as the plugin's exception with its traceback. An empty
            # list of property errors (the message names the input already): the SDK's
            # server fails on None (pulumi 3.259.0's create_grpc_invalid_properties_status
            # sets no trailing metadata then, which abort_with_status reads).
            raise InputPropertiesError(str(refusal), errors=[]) from None
        pool = HTCondorPool(component, args, options)
        return pulumi.provider.ConstructResult(pool.urn, {o.property: getattr(pool, o.name) for o in OUTPUTS})


def serve() -> None:
    """The plugin's main: serve the provider to the engine whose address Pulumi passes."""
    pulumi.provider.main(PoolProvider(), sys.argv[1:])


if __name__ == "__main__":
    json.dump(schema(), sys.stdout, indent=2)
