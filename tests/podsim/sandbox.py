"""Inside a new mount, UTS and PID namespace (and the pod's network namespace): build the
container's filesystem, then exec the container's command, which becomes the PID
namespace's PID 1 as in a real container.

Run as `python -m tests.podsim.sandbox SPEC.json` by kubelet.py, never by hand. Every mount
made here lives only in this private mount namespace, so it disappears with the pod.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def build_root(spec: dict) -> Path:
    pod = Path(spec["pod_dir"])
    merged = pod / "merged"
    for d in ("upper", "work", "merged"):
        (pod / d).mkdir(exist_ok=True)
    # Each pod writes to its own upper layer over the shared, untouched root filesystem.
    mount("-t", "overlay", "overlay", "-o",
          f"lowerdir={spec['rootfs']},upperdir={pod / 'upper'},workdir={pod / 'work'}", str(merged))
    mount("-t", "proc", "proc", str(merged / "proc"))
    mount("-t", "sysfs", "-o", "ro", "sysfs", str(merged / "sys"))
    mount("-t", "tmpfs", "-o", "mode=755,size=1m", "tmpfs", str(merged / "dev"))
    for node in DEV_NODES:
        (merged / "dev" / node).touch()
        mount("--bind", f"/dev/{node}", str(merged / "dev" / node))
    (merged / "dev" / "shm").mkdir()
    mount("-t", "tmpfs", "-o", "mode=1777", "tmpfs", str(merged / "dev" / "shm"))
    os.symlink("/proc/self/fd", merged / "dev" / "fd")
    for m in spec["mounts"]:
        target = merged / m["target"].lstrip("/")
        source = Path(m["source"])
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch(exist_ok=True)
        mount("--bind", str(source), str(target))
        if m.get("read_only"):
            mount("-o", "remount,bind,ro", str(target))
    return merged


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    merged = build_root(spec)
    socket.sethostname(spec["hostname"])
    os.chroot(merged)
    os.chdir(spec.get("working_dir") or "/")
    command = spec["command"]
    os.execvpe(command[0], command, spec["env"])


if __name__ == "__main__":
    main()
