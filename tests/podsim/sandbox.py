"""Inside a new mount, UTS and PID namespace (and the pod's network namespace): build the
container's filesystem, then exec the container's command, which becomes the PID
namespace's PID 1 as in a real container.

Run as `python -m tests.podsim.sandbox SPEC.json` by kubelet.py, never by hand. Every mount
made here lives only in this private mount namespace, so it disappears with the pod.
"""

import ctypes
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")

# linux/capability.h, in number order; linux/prctl.h.
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38


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
    if spec.get("read_only_root"):
        # readOnlyRootFilesystem: the image layer only; the mounts on it stay as they are.
        mount("-o", "remount,ro", str(merged))
    return merged


def confine(spec: dict) -> None:
    """As the runtime does last: the capability bounding set (root's capabilities after
    exec are exactly that set) and no_new_privs."""
    libc = ctypes.CDLL(None, use_errno=True)
    kept = spec.get("capabilities")
    if kept is not None:
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
        for number in range(last + 1):
            name = CAPABILITIES[number] if number < len(CAPABILITIES) else str(number)
            if name not in kept and libc.prctl(PR_CAPBSET_DROP, number, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), f"cannot drop capability {name}")
    if spec.get("no_new_privs") and libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "cannot set no_new_privs")


def become(user: dict | None) -> None:
    """The container's user (runAsUser, runAsGroup, fsGroup and supplementalGroups), last:
    a non-root user keeps no capability."""
    if user is None:
        return
    os.setgroups(user["groups"])
    os.setgid(user["gid"])
    os.setuid(user["uid"])


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    merged = build_root(spec)
    socket.sethostname(spec["hostname"])
    os.chroot(merged)
    os.chdir(spec.get("working_dir") or "/")
    confine(spec)
    become(spec.get("user"))
    command = spec["command"]
    os.execvpe(command[0], command, spec["env"])


if __name__ == "__main__":
    main()
