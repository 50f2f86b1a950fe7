"""The emulator's CLI, driven as a user would drive it by hand: `python -m tests.podsim`."""

import ipaddress
import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import require_emulator
from tests.podsim.cli import state_dir
from tests.podsim.kubelet import REPO, wait_until
from tests.podsim.network import leftover_namespaces

NAME = "clitest"


def podsim(*args: str, name: str = NAME, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.podsim", "--name", name, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def pods() -> list[dict]:
    result = podsim("pods", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def named(role: str) -> list[str]:
    return [p["name"] for p in pods() if p["role"] == role]


def slots(cm: str) -> list[str]:
    result = podsim("exec", cm, "--", "condor_status", "-af", "Name")
    return sorted(result.stdout.split()) if result.returncode == 0 else []


@pytest.fixture(scope="module")
def cli_cluster():
    require_emulator()
    podsim("down")
    up = podsim("up", "--stack", "dev", "--set", "workers=1")
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        yield up
    finally:
        down = podsim("down")
        assert down.returncode == 0, down.stderr
        assert not leftover_namespaces(f"ps-{NAME}-")


def test_up_starts_the_stacks_pods_and_pods_lists_them(cli_cluster):
    assert "central manager: htcondor-central-manager.htcondor.svc.cluster.local:9618" in cli_cluster.stdout
    listing = pods()
    assert sorted(p["role"] for p in listing) == ["central-manager", "metrics", "schedd", "worker"]
    addresses = [ipaddress.ip_address(p["ip"]) for p in listing]
    assert len(set(addresses)) == 4
    assert all(a in ipaddress.ip_network("10.244.0.0/16") for a in addresses)
    assert all(p["ready"] for p in listing)


def test_a_second_up_is_refused_while_the_cluster_runs(cli_cluster):
    again = podsim("up")
    assert again.returncode == 2
    assert "already up" in again.stderr


def test_exec_runs_as_root_or_as_the_given_user_and_returns_the_exit_status(cli_cluster):
    (schedd,) = named("schedd")
    assert podsim("exec", schedd, "--", "id", "-un").stdout.strip() == "root"
    assert podsim("exec", schedd, "--user", "submitter", "--", "id", "-un").stdout.strip() == "submitter"
    assert podsim("exec", schedd, "--", "sh", "-c", "exit 7").returncode == 7
    (cm,) = named("central-manager")
    (worker,) = named("worker")
    assert wait_until(lambda: slots(cm), 60, 0.5, "the worker's slot") == [f"slot1@{worker}"]


def test_scale_sets_the_worker_count_and_htcondor_sees_every_worker(cli_cluster):
    scaled = podsim("scale", "2")
    assert scaled.returncode == 0, scaled.stderr
    workers = named("worker")
    assert len(workers) == 2
    (cm,) = named("central-manager")
    want = sorted(f"slot1@{w}" for w in workers)
    wait_until(lambda: slots(cm) == want, 90, 0.5, f"slots {want}")
    assert podsim("scale", "1").returncode == 0
    assert len(named("worker")) == 1


def test_scale_rejects_a_bad_count_naming_the_key_value_and_what_is_allowed(cli_cluster):
    before = pods()
    bad = podsim("scale", "-1")
    assert bad.returncode == 2
    assert "workers" in bad.stderr and "-1" in bad.stderr and ">= 0" in bad.stderr
    assert pods() == before


def test_kill_replaces_the_pod_with_a_new_name_and_ip(cli_cluster):
    (old,) = [p for p in pods() if p["role"] == "central-manager"]
    killed = podsim("kill", old["name"])
    assert killed.returncode == 0, killed.stderr
    (new,) = wait_until(lambda: [p for p in pods() if p["role"] == "central-manager"
                                 and p["name"] != old["name"]], 30, 0.2, "a replacement")
    assert new["ip"] != old["ip"]
    assert f"replaced by {new['name']} ({new['ip']})" in killed.stdout


def test_bad_arguments_fail_before_anything_starts():
    require_emulator()
    for args, expected in ((["up", "--set", "workers"], "--set: 'workers' is not allowed; expected KEY=VALUE"),
                           (["up", "--stack", "nosuch"], "--stack: 'nosuch' is not allowed"),
                           (["up", "--set", "workers=many"], "workers: 'many' is not allowed")):
        result = podsim(*args, name="badargs", timeout=120)
        assert result.returncode == 2 and expected in result.stderr, (args, result.stderr)
        assert not leftover_namespaces("ps-badargs-")


def test_ctrl_c_during_up_tears_down_everything_it_started():
    require_emulator()
    name = "ctrlc"
    # As from a terminal: SIGINT at its default, even where this run was started with it
    # ignored (a background job's), which Python would then leave ignored in `up`.
    up = subprocess.Popen([sys.executable, "-m", "tests.podsim", "--name", name, "up"], cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_until(lambda: any("central-manager" in ns for ns in leftover_namespaces(f"ps-{name}-")),
                   120, 0.02, "the first pod")
        up.send_signal(signal.SIGINT)
        _, err = up.communicate(timeout=120)
        assert up.returncode == 130, err
        assert not leftover_namespaces(f"ps-{name}-")
    finally:
        up.kill()
        podsim("down", name=name)


def test_down_cleans_up_after_a_daemon_that_died():
    require_emulator()
    name = "crashed"
    podsim("down", name=name)  # whatever an earlier, interrupted run left
    try:
        assert podsim("up", name=name).returncode == 0
        pid = int((state_dir(name) / "daemon.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}/cmdline") or
                   not open(f"/proc/{pid}/cmdline").read(), 30, 0.1, "the daemon to die")
        orphans = pids_in_pod_namespaces_of(name)
        assert orphans, "the pods outlive their daemon (what `down` has to clean)"
        assert "gone" in podsim("pods", name=name).stderr
        down = podsim("down", name=name)
        assert down.returncode == 0 and "left-over" in down.stdout, down.stdout + down.stderr
        assert not leftover_namespaces(f"ps-{name}-")
        wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in orphans), 30, 0.1,
                   "the pods' processes to be gone")
    finally:
        podsim("down", name=name)


def pids_in_pod_namespaces_of(name: str) -> list[str]:
    pids = []
    for netns in leftover_namespaces(f"ps-{name}-"):
        pids += subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
    return pids
