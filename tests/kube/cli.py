"""`python -m tests.kube`: a real single-node Kubernetes cluster for trying the program by hand
and for the tests (as root), with the real Pulumi CLI and providers.

    build         build every binary that is missing (cached by version), print where
    up            build what is missing, start the cluster, wait until the node is Ready and
                  cluster DNS answers, then print `export NAME=value` lines: eval them
    env           print the same lines for the cluster that is up
    apply [--stack dev] [--set KEY=VALUE ...]
                  `pulumi config set KEY VALUE` for each setting, then `pulumi up --yes`, in
                  the cluster's copy of the project (tests/kube/pulumi.py: made on first use
                  from Pulumi.<stack>.yaml, with every role on the local image; its program
                  refreshed from this checkout each time)
    destroy       `pulumi destroy --yes` there
    pulumi ARGS   any other `pulumi` command there, e.g. `pulumi stack output`
    down          stop the cluster and remove everything of it, also after a crash

`--name NAME` (before the command) runs several clusters side by side; the default is
`kube`. For example:

    eval "$(python -m tests.kube up)"
    kubectl get nodes
    python -m tests.kube down
"""

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time

from pool.defaults import ROLES
from tests.podsim.cli import CliError, parse_settings
from tests.podsim.rootfs import PrerequisiteError

from . import build
from .cluster import Cluster
from .pulumi import Project, PulumiError


def exports(env: dict[str, str]) -> str:
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items())


def _interrupt(*_):
    raise KeyboardInterrupt


def cli_project(cluster: Cluster, stack: str) -> Project:
    """The cluster's copy of the project for `apply`, `destroy` and `pulumi`."""
    env = {**os.environ, **cluster.env()}
    root = cluster.workdir / "cli" / stack
    if (root / "project" / "Pulumi.yaml").exists():
        project = Project(root, env, stack)
        project.sync_program()
        return project
    project = Project.create(root, env, stack)
    if "htcondor-pool:images" not in project.pulumi("config", "--json").stdout:
        for role in ROLES:
            project.config_set(f"images.{role}", env["HTCONDOR_POOL_TEST_IMAGE"], path=True)
    return project


def apply(cluster: Cluster, stack: str, settings: list[str]) -> None:
    project = cli_project(cluster, stack)
    for key, value in parse_settings(settings).items():
        project.config_set(key, value)
    started = time.monotonic()
    result = project.pulumi("up", "--yes", check=False, timeout=None)
    print(result.stdout, end="")
    print(result.stderr, end="", file=sys.stderr)
    if result.returncode != 0:
        raise CliError(f"`pulumi up` exited {result.returncode}")
    print(f"(pulumi up took {time.monotonic() - started:.1f}s)")


def run_pulumi(cluster: Cluster, stack: str, args: list[str]) -> int:
    """A `pulumi` command in the cluster's copy of the project, its output straight through."""
    project = cli_project(cluster, stack)
    return subprocess.run(["pulumi", *args], cwd=project.directory, env=project.pulumi_env).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kube", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="kube", help="which cluster (default: kube)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build every missing binary")
    commands.add_parser("up", help="start the cluster and print its environment")
    commands.add_parser("env", help="print the environment of the running cluster")
    apply_parser = commands.add_parser("apply", help="`pulumi config set` each setting, then `pulumi up --yes`")
    apply_parser.add_argument("--stack", default="dev", help="Pulumi.<stack>.yaml to start from (default: dev)")
    apply_parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                              help="a stack config value, as `pulumi config set KEY VALUE` (repeatable)")
    destroy_parser = commands.add_parser("destroy", help="`pulumi destroy --yes` of what `apply` created")
    pulumi_parser = commands.add_parser("pulumi", help="any `pulumi` command in the cluster's project copy")
    for sub in (destroy_parser, pulumi_parser):
        sub.add_argument("--stack", default="dev", help="the stack (default: dev)")
    pulumi_parser.add_argument("args", nargs=argparse.REMAINDER, help="the pulumi command and its arguments")
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
            return run_pulumi(cluster, args.stack, ["destroy", "--yes"])
        elif args.command == "pulumi":
            return run_pulumi(cluster, args.stack, args.args[1:] if args.args[:1] == ["--"] else args.args)
        elif args.command == "down":
            cluster.down()
    except (PrerequisiteError, PulumiError, CliError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
