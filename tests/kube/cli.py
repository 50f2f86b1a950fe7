"""`python -m tests.kube`: a real single-node Kubernetes cluster for trying the program by hand
and for the tests (as root).

    build         build every binary that is missing (cached by version), print where
    up            build what is missing, start the cluster, wait until the node is Ready and
                  cluster DNS answers, then print `export NAME=value` lines: eval them
    env           print the same lines for the cluster that is up
    down          stop the cluster and remove everything of it, also after a crash

`--name NAME` (before the command) runs several clusters side by side; the default is
`kube`. For example:

    eval "$(python -m tests.kube up)"
    kubectl get nodes
    python -m tests.kube down
"""

import argparse
import shlex
import signal
import sys
import time

from tests.podsim.rootfs import PrerequisiteError

from . import build
from .cluster import Cluster


def exports(env: dict[str, str]) -> str:
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items())


def _interrupt(*_):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kube", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="kube", help="which cluster (default: kube)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build every missing binary")
    commands.add_parser("up", help="start the cluster and print its environment")
    commands.add_parser("env", help="print the environment of the running cluster")
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
        elif args.command == "down":
            cluster.down()
    except PrerequisiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
