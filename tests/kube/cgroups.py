"""The cluster's own cgroup: one path in every mounted hierarchy (cgroup v1 controllers,
name=systemd and the unified v2 one), under the memory cgroup the harness itself runs in.
Every process of the cluster starts in it, and the kubelet puts its pods below it
(cgroupRoot), so finding, killing and removing all of the cluster is a walk of one tree."""

import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def hierarchies() -> dict[str, Path]:
    """Each mounted hierarchy's key in /proc/self/cgroup ('memory', 'name=systemd', '' for
    the unified one), with its mount point."""
    found = {}
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, target, fstype, options, *_ = line.split()
        if fstype == "cgroup2":
            found[""] = Path(target)
        elif fstype == "cgroup":
            names = [o for o in options.split(",") if o in _controllers() or o.startswith("name=")]
            found[",".join(sorted(names, key=_controller_order))] = Path(target)
    return found


def _controllers() -> set[str]:
    return {line.split()[0] for line in Path("/proc/cgroups").read_text().splitlines()[1:]}


def _controller_order(name: str) -> tuple:
    return (name.startswith("name="), name)


def current(key: str) -> str:
    """This process's cgroup in the hierarchy `key`."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if set(controllers.split(",")) == set(key.split(",")) if key else controllers == "":
            return path
    return "/"


def cluster_path(name: str) -> str:
    """The cluster's cgroup, the same path in every hierarchy: below the memory cgroup this
    process runs in, so the cluster stays within whatever limits that one."""
    memory = next((k for k in hierarchies() if "memory" in k.split(",")), None)
    base = current(memory) if memory else "/"
    return f"{base.rstrip('/')}/htcondor-kube-{name}"


def create(path: str) -> list[Path]:
    """Make `path` in every hierarchy; returns the directories made (to remove later)."""
    made = []
    for mount in hierarchies().values():
        directory = mount / path.lstrip("/")
        missing = [d for d in [*reversed(directory.parents), directory]
                   if d.is_relative_to(mount) and not d.exists()]
        for d in missing:
            d.mkdir()
            made.append(d)
            if (d / "cpuset.cpus").exists():  # a v1 cpuset starts empty: inherit the parent's
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    (d / knob).write_text((d.parent / knob).read_text())
    return made


def join(path: str, pid: int | None = None) -> None:
    """Move a process (default: this one) into `path` in every hierarchy."""
    for mount in hierarchies().values():
        (mount / path.lstrip("/") / "cgroup.procs").write_text(str(pid or os.getpid()))


def processes(path: str) -> set[int]:
    """Every process in `path` or below, in any hierarchy."""
    pids = set()
    for mount in hierarchies().values():
        top = mount / path.lstrip("/")
        if top.exists():
            for procs in top.rglob("cgroup.procs"):
                try:
                    pids |= {int(p) for p in procs.read_text().split()}
                except OSError:
                    pass
    return pids


def kill_all(path: str, timeout: float = 30) -> None:
    """SIGKILL everything in `path` until nothing is left (processes may still fork)."""
    deadline = time.monotonic() + timeout
    while pids := processes(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes {sorted(pids)} in cgroup {path} survive SIGKILL")
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def remove(path: str, made: list[Path] | None = None) -> None:
    """Remove `path` and everything below it in every hierarchy, deepest first, then the
    parents `create` made if they are empty (another cluster may still use them)."""
    for mount in hierarchies().values():
        top = mount / path.lstrip("/")
        if top.exists():
            for directory in sorted((d for d in top.rglob("*") if d.is_dir()),
                                    key=lambda d: len(d.parts), reverse=True):
                directory.rmdir()
            top.rmdir()
    for directory in sorted(made or [], key=lambda d: len(d.parts), reverse=True):
        try:
            directory.rmdir()
        except (FileNotFoundError, OSError):
            pass
