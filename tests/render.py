"""Run the real program (__main__.py) under Pulumi mocks and capture what it registers.

This is how the tests see the product: every resource with its type, name, parent,
dependencies and inputs (camelCase manifests, as pulumi-kubernetes sends them), plus the
stack outputs with their secretness. The pod emulator runs these same manifests.
"""

import asyncio
import hashlib
import json
import random as _random
import runpy
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings

REPO = Path(__file__).resolve().parent.parent
PROJECT = "htcondor-pool"
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a secret value
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


@dataclass
class Resource:
    type: str
    name: str
    urn: str
    parent: str
    dependencies: list[str]
    inputs: dict  # secrets unwrapped, integral floats back to ints
    secret_paths: list[str]  # where in `inputs` Pulumi saw a secret
    raw_inputs: dict  # as sent, secret markers included
    # Its former names (pulumi.Alias), as the engine gets them: {"spec": {"parentUrn": ...}}.
    aliases: list[dict] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.inputs.get("kind", self.type)


@dataclass
class Rendered:
    resources: list[Resource]
    outputs: dict  # stack output name -> value
    secret_outputs: set
    password: str  # the plaintext the mocked RandomPassword returned

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def manifests(self) -> list[dict]:
        """The Kubernetes objects, as `kubectl apply` would take them."""
        return [r.inputs for r in self.resources if r.type.startswith("kubernetes:")]


# The random provider keeps a RandomPassword's result in the stack's state until one of its
# inputs (its keepers among them) changes. The mock does the same within one test process,
# as one stack: the result is a function of the inputs and this process's seed. So a render
# with a changed keeper (passwordVersion) gets a new password, and one without gets the old.
STACK_SEED = "".join(_random.SystemRandom().choice(string.ascii_letters) for _ in range(32))


def mocked_password(inputs: dict, seed: str = STACK_SEED, length: int = 40) -> str:
    digest = hashlib.sha512(f"{seed}:{json.dumps(inputs, sort_keys=True, default=str)}".encode()).digest()
    alphabet = string.ascii_letters + string.digits
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


class _PoolMocks(pulumi.runtime.Mocks):
    def __init__(self, password: str | None):
        self.password = password  # None: as the provider would (mocked_password)
        self.resolved: str | None = None

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        if args.typ == RANDOM_PASSWORD:
            # None otherwise: the real provider computes it.
            outputs["result"] = self.resolved = self.password or mocked_password(dict(args.inputs))
        return [f"{args.name}-id", outputs]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockResourceArgs carry no parent or dependencies; the monitor's requests do."""

    def __init__(self, mocks):
        super().__init__(mocks)
        self.requests = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.requests.append((request, response.urn))
        return response


def _unwrap(value, path, secrets):
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            secrets.append(path or "/")
            return _unwrap(value.get("value"), path, secrets)
        return {k: _unwrap(v, f"{path}/{k}", secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}/{i}", secrets) for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def stack_config(stack: str) -> dict[str, str]:
    """Pulumi.<stack>.yaml's config, as the CLI hands it to the program: strings, with
    structured values JSON-encoded."""
    path = REPO / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text()) or {}
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in (data.get("config") or {}).items()}


def render(config: dict | None = None, stack: str = "dev", password: str | None = None,
           program: Path = REPO / "__main__.py") -> Rendered:
    """Run `program` (the project's __main__.py) with `config` ({"workers": "2"} or
    {"htcondor-pool:workers": "2"}) on top of nothing (stack=None) or of
    Pulumi.<stack>.yaml. Exceptions propagate."""
    full = stack_config(stack) if stack else {}
    for key, value in (config or {}).items():
        full[key if ":" in key else f"{PROJECT}:{key}"] = value
    return render_program(lambda: runpy.run_path(str(program), run_name="__main__"), full, stack or "test", password)


def render_program(program: Callable[[], object], config: dict | None = None, stack: str = "test",
                   password: str | None = None) -> Rendered:
    """Run `program`, a function that registers resources (the project's __main__.py, or
    one role's component built alone: tests/roles/), under the mocks, with stack config
    `config` (keys as {"htcondor-pool:workers": "2"}): what it registers, and the stack
    outputs it exports. Exceptions propagate."""
    mocks = _PoolMocks(password)
    monitor = _RecordingMonitor(mocks)
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False,
                             monitor=monitor)
    pulumi.runtime.set_all_config(config or {})
    collected: dict = {}

    async def collect_outputs():
        root = pulumi_settings.get_root_resource()
        for name, output in root.outputs.items():
            output = pulumi.Output.from_input(output)
            collected[name] = (await output.future(), await output.is_secret())

    @pulumi.runtime.test
    def run():
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        program()
        return asyncio.ensure_future(collect_outputs())

    try:
        run()
    except Exception as exc:
        # Lets a test check that bad input stopped the program before anything was created.
        exc.registered = [request.type for request, _ in monitor.requests]  # type: ignore[attr-defined]
        raise
    resources = []
    for request, urn in monitor.requests:
        raw = json_format.MessageToDict(request.object)
        secrets: list[str] = []
        inputs = _unwrap(raw, "", secrets)
        resources.append(Resource(request.type, request.name, urn, request.parent,
                                  list(request.dependencies), inputs, secrets, raw,
                                  [json_format.MessageToDict(alias) for alias in request.aliases]))
    return Rendered(resources, {k: v for k, (v, _) in collected.items()},
                    {k for k, (_, s) in collected.items() if s}, mocks.resolved)


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.render [--stack dev] [KEY=VALUE ...]`: a stack's Kubernetes objects
    as YAML, for policy scanners (README: "What policy scanners report"). The Secrets hold
    the mocks' password and tokens, never a real stack's."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m tests.render", description=main.__doc__.split(":", 1)[1])
    parser.add_argument("--stack", default="dev", help="the Pulumi.<stack>.yaml to start from (default: dev)")
    parser.add_argument("config", nargs="*", metavar="KEY=VALUE", help="stack config on top of it")
    args = parser.parse_args(argv)
    config = {}
    for setting in args.config:
        key, sep, value = setting.partition("=")
        if not sep:
            parser.error(f"{setting!r} is not KEY=VALUE")
        config[key] = value
    from pool.errors import PoolConfigError
    try:
        rendered = render(config, stack=args.stack)
    except PoolConfigError as error:  # one line, as `pulumi up` shows it
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(yaml.safe_dump_all(rendered.manifests(), sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
