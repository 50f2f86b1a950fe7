"""`python -m tests.podsim`: try a stack locally on emulated pods.

    up [--stack dev] [--set KEY=VALUE ...]   render the stack with overrides, start its pods
       [--gpus N] [--node-label KEY=VALUE ...]  on a node with N (simulated) GPUs, these labels
    pods [--json]                            name, role, IP and readiness of every pod
    exec POD [--user USER] -- CMD...         run a command in a pod (root unless --user)
    kill POD                                 delete a pod; its Deployment replaces it
    scale N                                  set the worker count, as the stack config would
    down                                     stop everything, also what a crashed `up` left

`up` leaves a daemon holding the cluster (see daemon.py); the other commands talk to it over
a Unix socket in /run/podsim/<name>-control/. `--name` runs several clusters side by side.
"""

import argparse
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
from pathlib import Path

from pool.errors import PoolConfigError

from .kubelet import REPO, wait_until
from .network import leftover_namespaces, remove_namespace

RUN_DIR = Path("/run/podsim")
UP_TIMEOUT = 900  # a first run builds the root filesystem (about a minute) before the pods


class CliError(Exception):
    """A problem the user can fix; printed without a traceback, exit status 2."""


def state_dir(name: str) -> Path:
    return RUN_DIR / f"{name}-control"


def request(name: str, message: dict, timeout: float | None = 60) -> dict:
    path = state_dir(name) / "control.sock"
    if not path.exists():
        raise CliError(f"no emulated cluster {name!r} is up; start one with `python -m tests.podsim up`")
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            raise CliError(f"the daemon of cluster {name!r} is gone; run `python -m tests.podsim --name {name} down`") from None
        conn.sendall(json.dumps(message).encode() + b"\n")
        reply = json.loads(conn.makefile().readline() or "{}")
    if "error" in reply:
        raise CliError(reply["error"])
    return reply


def parse_settings(settings: list[str], option: str = "--set", example: str = "workers=2") -> dict:
    config = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise CliError(f"{option}: {setting!r} is not allowed; expected KEY=VALUE, "
                           f"for example {option} {example}")
        config[key] = value
    return config


def print_pods(pods: list[dict]) -> None:
    width = max([len(p["name"]) for p in pods] + [4])
    print(f"{'NAME':<{width}}  {'ROLE':<16} {'IP':<15} READY")
    for p in pods:
        print(f"{p['name']:<{width}}  {p['role']:<16} {p['ip']:<15} {'yes' if p['ready'] else 'no'}")


# ---- commands ----------------------------------------------------------------------------
def up(args) -> int:
    from tests.render import render
    directory = state_dir(args.name)
    if (directory / "control.sock").exists() or leftover_namespaces(f"ps-{args.name}-"):
        raise CliError(f"cluster {args.name!r} is already up (or left over); "
                       f"run `python -m tests.podsim --name {args.name} down` first")
    config = parse_settings(args.set)
    node = {"gpus": args.gpus, "labels": parse_settings(args.node_label, "--node-label", "pool=bigmem")}
    if not (REPO / f"Pulumi.{args.stack}.yaml").exists():
        raise CliError(f"--stack: {args.stack!r} is not allowed; there is no Pulumi.{args.stack}.yaml")
    try:
        rendered = render(config, stack=args.stack)
    except PoolConfigError as exc:
        raise CliError(str(exc)) from None
    directory.mkdir(parents=True, exist_ok=True)
    status = directory / "status"
    status.unlink(missing_ok=True)
    (directory / "rendered.pickle").write_bytes(pickle.dumps(
        {"rendered": rendered, "config": config, "stack": args.stack, "node": node}))
    with open(directory / "daemon.log", "ab") as log:
        daemon = subprocess.Popen([sys.executable, "-m", "tests.podsim", "--name", args.name, "_serve"],
                                  cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    (directory / "daemon.pid").write_text(f"{daemon.pid}\n")
    print(f"starting cluster {args.name!r} (stack {args.stack}); log: {directory / 'daemon.log'}",
          file=sys.stderr)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill stops `up` as Ctrl-C does
    try:
        wait_until(lambda: status.exists() or daemon.poll() is not None, UP_TIMEOUT, 0.2,
                   "the pool to come up")
    except (TimeoutError, KeyboardInterrupt) as exc:
        daemon.send_signal(signal.SIGTERM)  # it tears down what it started
        daemon.wait(timeout=120)
        if isinstance(exc, TimeoutError):
            raise CliError(f"{exc}; see {directory / 'daemon.log'}") from None
        print("interrupted: everything started is torn down", file=sys.stderr)
        return 130
    text = status.read_text() if status.exists() else "failed\n(the daemon exited)"
    if not text.startswith("ready"):
        daemon.wait(timeout=120)
        raise CliError(f"the pool did not come up:\n{text.split(chr(10), 1)[1]}"
                       f"\nsee {directory / 'daemon.log'}; run `python -m tests.podsim --name {args.name} down`")
    print_pods(request(args.name, {"op": "pods"})["pods"])
    print(f"central manager: {rendered.outputs['central_manager_address']}")
    return 0


def pods(args) -> int:
    listing = request(args.name, {"op": "pods"})["pods"]
    if args.json:
        print(json.dumps([{k: p[k] for k in ("name", "role", "ip", "ready")} for p in listing], indent=2))
    else:
        print_pods(listing)
    return 0


def exec_(args) -> int:
    command = args.command
    if not command:
        raise CliError("exec: a command is required after `--`, e.g. exec POD -- condor_status")
    reply = request(args.name, {"op": "exec", "pod": args.pod, "user": args.user,
                                "command": command, "timeout": args.timeout}, timeout=args.timeout + 30)
    sys.stdout.write(reply["stdout"])
    sys.stderr.write(reply["stderr"])
    return reply["returncode"]


def kill(args) -> int:
    reply = request(args.name, {"op": "kill", "pod": args.pod})
    print(f"deleted {reply['deleted']}")
    for pod in reply["replacements"]:
        print(f"replaced by {pod['name']} ({pod['ip']})")
    return 0


def scale(args) -> int:
    reply = request(args.name, {"op": "scale", "workers": args.workers}, timeout=300)
    print(f"{reply['deployment']}: replicas {reply['replicas']}")
    print_pods(reply["pods"])
    return 0


def down(args) -> int:
    directory = state_dir(args.name)
    pid_file = directory / "daemon.pid"
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    try:
        request(args.name, {"op": "down"})
    except CliError:
        pass  # no daemon answering: clean up whatever it left
    if pid is not None:
        try:
            wait_until(lambda: not _alive(pid), 120, 0.2, f"the daemon (pid {pid}) to finish")
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
    leftovers = leftover_namespaces(f"ps-{args.name}-")
    for netns in leftovers:  # a daemon that died without its teardown
        remove_namespace(netns)
    subprocess.run(["rm", "-rf", "--one-file-system", str(RUN_DIR / args.name), str(directory)], check=False)
    print(f"cluster {args.name!r} is down" + (f" (removed {len(leftovers)} left-over namespaces)" if leftovers else ""))
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (the daemon's parent `up` is still waiting) counts as finished.
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


def serve(args) -> int:
    from .daemon import serve as run
    return run(state_dir(args.name), args.name)


def gpu_count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected a whole number of GPUs, 0 or more")
    return int(text)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m tests.podsim", description=__doc__.split("\n\n")[0])
    top.add_argument("--name", default="cli", help="the emulated cluster's name (default: cli)")
    commands = top.add_subparsers(dest="cmd", required=True)
    p = commands.add_parser("up", help="render the stack and start its pods")
    p.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to use (default: dev)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a stack config key, e.g. --set workers=2 (repeatable)")
    p.add_argument("--gpus", type=gpu_count, default=0, metavar="N",
                   help="nvidia.com/gpu the node offers, simulated by HTCondor's GPU discovery (default: 0)")
    p.add_argument("--node-label", action="append", default=[], metavar="KEY=VALUE",
                   help="a label of the node, for nodeSelector (repeatable)")
    p.set_defaults(run=up)
    p = commands.add_parser("pods", help="list pods: name, role, IP, readiness")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(run=pods)
    p = commands.add_parser("exec", help="run a command in a pod: exec POD [--user USER] -- CMD...")
    p.add_argument("pod")
    p.add_argument("--user", help="run as this user of the pod (default: root)")
    p.add_argument("--timeout", type=float, default=600, help="seconds before the command is killed")
    p.set_defaults(run=exec_)
    p = commands.add_parser("kill", help="delete a pod; its Deployment starts a replacement")
    p.add_argument("pod")
    p.set_defaults(run=kill)
    p = commands.add_parser("scale", help="set the worker count (validated as the stack config is)")
    p.add_argument("workers", metavar="N")
    p.set_defaults(run=scale)
    p = commands.add_parser("down", help="stop the cluster and remove everything it made")
    p.set_defaults(run=down)
    p = commands.add_parser("_serve", help=argparse.SUPPRESS)
    p.set_defaults(run=serve)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` is the command for `exec`, options included.
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    args = parser().parse_args(argv)
    args.command = command
    if os.geteuid() != 0:
        print("python -m tests.podsim needs root (namespaces, mounts, debootstrap)", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
