"""`python -m tests.kube`: a real single-node Kubernetes cluster for trying the program by hand
and for the tests (as root).

    build         build every binary that is missing (cached by version), print where
    up            build what is missing, start the cluster, wait until the node is Ready and
                  cluster DNS answers, then print `export NAME=value` lines: eval them
    env           print the same lines for the cluster that is up
    apply [--stack dev] [--set KEY=VALUE ...]
                  `pulumi config set KEY VALUE` for each setting (they are kept for the
                  next apply), then apply the program's objects as `pulumi up` would
                  (tests/kube/deploy.py); images default to the local one
    destroy       delete what `apply` created, as `pulumi destroy` would
    down          stop the cluster and remove everything of it, also after a crash

`--name NAME` (before the command) runs several clusters side by side; the default is
`kube`. For example:

    eval "$(python -m tests.kube up)"
    kubectl get nodes
    python -m tests.kube down
"""

import argparse
import base64
import json
import os
import shlex
import signal
import sys
import time

from pool.defaults import ROLES
from pool.errors import PoolConfigError
from pool.password import unscramble
from tests.podsim.cli import CliError, parse_settings
from tests.podsim.rootfs import PrerequisiteError

from . import build
from .cluster import Cluster
from .deploy import Deployer


def exports(env: dict[str, str]) -> str:
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items())


def _interrupt(*_):
    raise KeyboardInterrupt


def deployer(cluster: Cluster) -> Deployer:
    env = {**os.environ, **cluster.env()}
    return Deployer(["kubectl"], env, state_file=cluster.workdir / "deployed.json")


def apply(cluster: Cluster, stack: str, settings: list[str]) -> None:
    """`pulumi config set` of each setting, then `pulumi up`, on the stand-in engine. As in
    a stack, settings stay until set again. The pool password is the one in the cluster's
    Secret until passwordVersion changes, as the RandomPassword's keeper makes it: outside
    the cluster only the settings and the keeper's value are kept."""
    from tests.render import random_password, render, stack_config
    env = cluster.env()
    state = cluster.workdir / "stack.json"
    kept = json.loads(state.read_text()) if state.exists() else {}
    settings_now = {**kept.get("settings", {}), **parse_settings(settings)}
    config = {**stack_config(stack), **settings_now}
    if not any(key.endswith("images") for key in config):
        config["images"] = json.dumps({role: env["HTCONDOR_POOL_TEST_IMAGE"] for role in ROLES})
    rendered = render(config, stack=None)  # checks the config; names the Secret
    (secret,) = [m for m in rendered.manifests() if m["kind"] == "Secret"]
    version = next(r.inputs for r in rendered.resources if r.type.endswith("RandomPassword"))["keepers"]
    password = None
    if kept.get("keepers") == version:
        current = deployer(cluster).get("secret", secret["metadata"]["namespace"], secret["metadata"]["name"])
        if current is not None:
            password = unscramble(base64.b64decode(current["data"]["POOL"]))
    rendered = render(config, stack=None, password=password or random_password())
    started = time.monotonic()
    deployer(cluster).up(rendered)
    state.write_text(json.dumps({"settings": settings_now, "keepers": version}))
    print(f"applied in {time.monotonic() - started:.1f}s; outputs:")
    for name, value in rendered.outputs.items():
        print(f"  {name}: {'[secret]' if name in rendered.secret_outputs else value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kube", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="kube", help="which cluster (default: kube)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build every missing binary")
    commands.add_parser("up", help="start the cluster and print its environment")
    commands.add_parser("env", help="print the environment of the running cluster")
    apply_parser = commands.add_parser("apply", help="apply a stack's objects as `pulumi up` would")
    apply_parser.add_argument("--stack", default="dev", help="Pulumi.<stack>.yaml to start from (default: dev)")
    apply_parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                              help="a stack config value, as `pulumi config set KEY VALUE` (repeatable)")
    commands.add_parser("destroy", help="delete what `apply` created")
    commands.add_parser("down", help="stop and remove the cluster")
    args = parser.parse_args(argv)
    cluster = Cluster(args.name)
    # SIGTERM (a CI timeout, a kill) tears down what `up` started, as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.command == "build":
            started = time.monotonic()
            binaries = build.build_all()
            for name, directory in binaries.dirs.items():
                print(f"{name}: {directory}")
            print(f"cni plugins: {binaries.cni_bin_dir}")
            print(f"({time.monotonic() - started:.0f}s)", file=sys.stderr)
        elif args.command == "up":
            started = time.monotonic()
            cluster.up()
            print(f"# cluster {args.name!r} up in {time.monotonic() - started:.0f}s; "
                  f"`python -m tests.kube --name {args.name} down` removes it")
            print(exports(cluster.env()))
        elif args.command == "env":
            print(exports(cluster.env()))
        elif args.command == "apply":
            apply(cluster, args.stack, args.set)
        elif args.command == "destroy":
            deployer(cluster).destroy()
            (cluster.workdir / "stack.json").unlink(missing_ok=True)
        elif args.command == "down":
            cluster.down()
    except (PrerequisiteError, PoolConfigError, CliError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
