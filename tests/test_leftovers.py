"""The leftover check (tests/leftovers.py, run by conftest.py at the end of every run) tells
what a run made and forgot from what a system tool sets up once per machine, and still
catches a run that leaves a namespace, process, mount or cgroup behind."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests import leftovers
from tests.conftest import require_root

REPO = Path(__file__).resolve().parents[1]


def snapshot(mounts=(), namespaces=(), cgroups=()) -> leftovers.Snapshot:
    return leftovers.Snapshot("marker", 0, "net:[1]", set(mounts), set(namespaces), set(cgroups))


MACHINE = ["/", "/proc", "/sys", "/run"]


def test_the_netns_directory_iproute2_mounts_once_per_machine_is_not_a_leftover():
    before = snapshot(MACHINE)
    assert leftovers.compare(before, {*MACHINE, "/run/netns"}, set(), set()) == []


def test_a_named_namespace_left_under_it_is_a_leftover_and_so_is_the_directory_then():
    before = snapshot(MACHINE)
    found = leftovers.compare(before, {*MACHINE, "/run/netns", "/run/netns/htcondor-kube-t"},
                              {"htcondor-kube-t"}, set())
    assert found == ["mount /run/netns", "mount /run/netns/htcondor-kube-t", "network namespace htcondor-kube-t"]


def test_a_namespace_left_on_a_machine_that_had_the_directory_already_is_a_leftover():
    before = snapshot([*MACHINE, "/run/netns"], ["someone-elses"])
    found = leftovers.compare(before, {*MACHINE, "/run/netns", "/run/netns/podsim-t"},
                              {"someone-elses", "podsim-t"}, set())
    assert found == ["mount /run/netns/podsim-t", "network namespace podsim-t"]


def test_mounts_in_a_runs_work_directories_and_its_cgroups_are_leftovers():
    before = snapshot(MACHINE)
    found = leftovers.compare(before, {*MACHINE, "/run/netns", "/run/podsim/t/pods/cm/rootfs",
                                       "/var/tmp/htcondor-pool-kube/kube/mnt"}, set(),
                              {"/sys/fs/cgroup/memory/htcondor-kube-kube"})
    assert found == ["mount /run/podsim/t/pods/cm/rootfs", "mount /var/tmp/htcondor-pool-kube/kube/mnt",
                     "cgroup /sys/fs/cgroup/memory/htcondor-kube-kube"]


# ---- the check itself, on a machine where /run/netns did not exist -------------------------
# Run in a mount namespace of its own, without the machine's /run/netns mount (if the machine
# has one) and with a new, empty tmpfs as /run: the state of a machine on which `ip netns
# add` never ran. The probe makes and removes a namespace as a clean run
# does, then leaves each kind of thing behind once, and reports what the check saw each time.
PROBE = r"""
import json, os, signal, subprocess, sys, time
from pathlib import Path
from tests import leftovers

def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)

report = {"netns_dir_before": os.path.exists(leftovers.NETNS_RUN_DIR)}
snap = leftovers.take()
report["netns_dir_mounted_before"] = leftovers.NETNS_RUN_DIR in snap.mounts
ip("netns", "add", "leftover-probe-clean")
ip("netns", "del", "leftover-probe-clean")
report["netns_dir_mounted"] = leftovers.NETNS_RUN_DIR in leftovers._mount_points()
report["clean"] = leftovers.left_behind(snap)

ip("netns", "add", "leftover-probe-left")
report["namespace"] = leftovers.left_behind(snap)
ip("netns", "del", "leftover-probe-left")

work = Path("/run/leftover-probe")
work.mkdir()
subprocess.run(["mount", "-t", "tmpfs", "probe", str(work)], check=True)
report["mount"] = leftovers.left_behind(snap)
subprocess.run(["umount", str(work)], check=True)

sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
report["process"] = leftovers.left_behind(snap)
os.killpg(sleeper.pid, signal.SIGKILL)
sleeper.wait()

hierarchy = next(p for p in sorted(Path("/sys/fs/cgroup").iterdir()) if (p / "cgroup.procs").exists())
cgroup = hierarchy / f"{leftovers.CGROUP_PREFIXES[0]}leftover-probe-{os.getpid()}"
cgroup.mkdir()
try:
    report["cgroup"] = leftovers.left_behind(snap)
finally:
    cgroup.rmdir()
report["after_cleanup"] = leftovers.left_behind(snap)
print(json.dumps(report))
"""


def test_on_a_machine_without_run_netns_a_clean_run_passes_and_each_leftover_fails_it():
    require_root("leftover check")
    env = {key: value for key, value in os.environ.items() if key != leftovers.MARKER}
    result = subprocess.run(
        # A PID namespace of its own too: it sees only its own processes, not those the other
        # group of a run with workers starts meanwhile (tests/conftest.py).
        ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc", "--", "sh", "-c",
         'if mountpoint -q /run/netns; then umount --recursive /run/netns; fi && '
         'mount -t tmpfs fresh-run /run && exec "$0" -c "$1"', sys.executable, PROBE],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # The probe started where a fresh machine starts, and its first `ip netns add` made the
    # directory a mount, as on a fresh machine.
    assert report["netns_dir_before"] is False and report["netns_dir_mounted_before"] is False
    assert report["netns_dir_mounted"] is True
    assert report["clean"] == []
    assert report["namespace"] == ["mount /run/netns", "mount /run/netns/leftover-probe-left",
                                   "network namespace leftover-probe-left"]
    assert report["mount"] == ["mount /run/leftover-probe"]
    assert len(report["process"]) == 1 and report["process"][0].endswith(": sleep 300"), report["process"]
    assert len(report["cgroup"]) == 1 and "htcondor-kube-leftover-probe-" in report["cgroup"][0], report["cgroup"]
    assert report["after_cleanup"] == []
