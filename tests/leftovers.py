"""What a test run leaves behind on the machine: processes it started that still run,
mounts, network namespaces and cgroups it made. conftest.py snapshots the machine when the
run starts and compares when it ends; under CI=true anything left fails the run.

A process counts as the run's if it started after the snapshot and either carries the
run's marker in its environment (everything the tests start inherits it) or lives in a
network namespace other than the run's own (emulated pods, the real cluster's components
and containers: they are started with environments of their own).
"""

import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

MARKER = "HTCONDOR_POOL_TEST_RUN"
CGROUP_PREFIXES = ("htcondor-kube-",)
# Where iproute2 keeps named network namespaces (its NETNS_RUN_DIR). The first `ip netns
# add` on a machine makes this directory a shared bind mount of itself, so that namespaces
# mounted in it propagate, and leaves it for good: a facility of the machine, not something
# a run made. It counts as left behind only while a namespace of the run's is still in it.
NETNS_RUN_DIR = "/run/netns"


def _boot_ticks(pid: str) -> int:
    # Field 22 of /proc/PID/stat: start time in clock ticks since boot (after the command,
    # which may contain spaces, in parentheses).
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def _net_namespace(pid: str | int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


@dataclass
class Snapshot:
    marker: str
    ticks: int  # clock ticks since boot when taken
    net: str
    mounts: set[str]
    namespaces: set[str]
    cgroups: set[str]


def _mount_points() -> set[str]:
    return {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}


def _namespaces() -> set[str]:
    result = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return {line.split()[0] for line in result.stdout.splitlines() if line.strip()}


def _cgroups() -> set[str]:
    found = set()
    for mount in Path("/sys/fs/cgroup").iterdir():
        for prefix in CGROUP_PREFIXES:
            found |= {str(p) for p in mount.rglob(f"{prefix}*") if p.is_dir()}
    return found


def take() -> Snapshot:
    """Mark this process's environment (children inherit it) and snapshot the machine."""
    marker = os.environ.setdefault(MARKER, uuid.uuid4().hex)
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return Snapshot(marker, int(uptime * os.sysconf("SC_CLK_TCK")), _net_namespace("self"),
                    _mount_points(), _namespaces(), _cgroups())


def _run_processes(snapshot: Snapshot) -> list[str]:
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if _boot_ticks(entry.name) < snapshot.ticks:
                continue
            ours = f"{MARKER}={snapshot.marker}".encode() in (entry / "environ").read_bytes().split(b"\0")
            if ours or _net_namespace(entry.name) != snapshot.net:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"process {entry.name}: {command.strip()[:120]}")
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue  # gone meanwhile, or a kernel thread
    return found


def compare(before: Snapshot, mounts: set[str], namespaces: set[str], cgroups: set[str]) -> list[str]:
    """What of the machine's mounts, network namespaces and cgroups now was not there at
    `before`, less the machine facility a system tool sets up once (NETNS_RUN_DIR)."""
    new_namespaces = sorted(namespaces - before.namespaces)
    new_mounts = mounts - before.mounts
    if not new_namespaces:
        new_mounts.discard(NETNS_RUN_DIR)
    found = [f"mount {m}" for m in sorted(new_mounts)]
    found += [f"network namespace {n}" for n in new_namespaces]
    found += [f"cgroup {c}" for c in sorted(cgroups - before.cgroups)]
    return found


def left_behind(snapshot: Snapshot) -> list[str]:
    return _run_processes(snapshot) + compare(snapshot, _mount_points(), _namespaces(), _cgroups())


def wait_for_none(snapshot: Snapshot, timeout: float = 15) -> list[str]:
    """What is left once teardowns still under way have had `timeout` seconds to finish."""
    deadline = time.monotonic() + timeout
    while (found := left_behind(snapshot)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return found
