"""What a job may do to its node and its network (real HTCondor in the emulator): a worker's
slot advertises its container's disk, so a job asking for more stays idle saying why; a
job reaches the pool's HTCondor port and the networks `workerEgressCidrs` allows, never the
cloud's instance metadata, other pods or other ports; a daemon too busy to answer is not
restarted for it (see test_emulated_pool)."""

import re

import pytest

from tests.conftest import running_pool
from tests.htcondor_jobs import SLEEPER, QueryFailed, output, sleeper_submit, submit, wait_completed
from tests.network_checks import PROBE, connections, outcomes
from tests.podsim.kubelet import wait_until
from tests.render import render
from tests.test_emulated_pool import CM, SCHEDD, the

DISK = "2Gi"
CONFIG = {"resources": f'{{"worker": {{"cpu": "2", "memory": "1Gi", "disk": "{DISK}"}}}}'}
METADATA = "169.254.169.254"  # where clouds serve instance metadata (and node credentials)
INTERNET = "192.0.2.10"  # TEST-NET-1: a public address, as far as the policy is concerned
ELSEWHERE_SUBNET = 201  # a host on the pod network that is not the pool's: another namespace's pod
LISTEN = ["python3", "-c", "import socket, time\n"
          "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          "s.bind(('0.0.0.0', 80)); s.listen(16)\n"
          "while True:\n    c, _ = s.accept(); c.close()\n"]


@pytest.fixture(scope="module")
def pool():
    with running_pool("confine", render(CONFIG)) as cluster:
        for name, where in (("metadata", {"address": METADATA}), ("internet", {"address": INTERNET}),
                            ("elsewhere", {"subnet": ELSEWHERE_SUBNET})):
            cluster.run_host(name, {}, LISTEN, **where)
        yield cluster


# ---- disk ----------------------------------------------------------------------------------
def test_the_slot_advertises_its_containers_disk_less_htcondors_share(pool):
    def slot_disk():  # the worker's pod is ready before its slot's ad reaches the collector
        result = the(pool, CM).exec(["condor_status", "-af", "TotalSlotDisk"])
        if result.returncode != 0:
            raise QueryFailed(result.stderr)
        return result.stdout.split()
    (disk_kib,) = wait_until(slot_disk, 60, 0.5, "the worker's slot ad")
    assert int(float(disk_kib)) == 2 * 1024 * 1024 * 90 // 100  # 90% of 2Gi, in KiB


def test_a_job_asking_for_more_disk_than_a_slot_has_stays_idle_and_says_why(pool):
    schedd = the(pool, SCHEDD)
    fits = submit(schedd, "fits", SLEEPER, sleeper_submit(0, "request_disk = 1G", tag="fits"))
    too_big = submit(schedd, "toobig", SLEEPER, sleeper_submit(0, "request_disk = 3G", tag="toobig"))
    (row,) = wait_completed(schedd, fits, 1)  # the probe: a job that fits runs
    assert row[1:3] == ["4", "0"], row
    status = schedd.exec(["condor_q", too_big, "-af", "JobStatus"], user="submitter").stdout.split()
    assert status == ["1"], status  # still idle, after the other was matched, ran and finished
    # As root, as `kubectl exec` runs it: the analysis reads the slots' ads from the collector,
    # which answers only identities it knows (the schedd's token), not a submitter's shell.
    result = schedd.exec(["condor_q", "-better-analyze", too_big])
    assert result.returncode == 0, result.stderr
    # It shows the job's disk beside the slot's, and no slot willing. (HTCondor 23 names the
    # job's condition `TARGET.Disk >= RequestDisk`; from 25.12 the slot refuses the job by
    # its own requirements.)
    analysis = result.stdout
    requested = int(re.search(r"RequestDisk = (\d+) \(kb\)", analysis).group(1))
    offered = [int(kb) for kb in re.findall(r"TARGET\.Disk = (\d+) \(kb\)", analysis)]
    assert offered and all(requested > kb for kb in offered), analysis
    assert re.search(r"\b0 (are able to run your job|slots match and are willing to run your job)", analysis), analysis
    schedd.exec(["condor_rm", too_big], user="submitter")


# ---- egress ----------------------------------------------------------------------------------
def probe_from_a_job(pool, targets: list[str]) -> dict[str, str]:
    schedd = the(pool, SCHEDD)
    job = submit(schedd, "egress", PROBE, sleeper_submit(0, tag="egress").replace(
        "arguments = 0", f"arguments = {' '.join(targets)}"))
    (row,) = wait_completed(schedd, job, 1, timeout=120)
    assert row[1:3] == ["4", "0"], row
    return outcomes(output(schedd, "egress.out.0"))


def test_a_job_reaches_the_pool_and_the_internet_but_not_metadata_other_pods_or_ports(pool):
    cm = the(pool, CM)
    elsewhere = next(p for p in pool.pods.values() if p.name == "elsewhere")
    seen = probe_from_a_job(pool, [f"{INTERNET}:80", f"{cm.ip}:9618", f"{METADATA}:80",
                                   f"{elsewhere.ip}:80", f"{cm.ip}:9619"])
    # What must connect does: the probe and the network work.
    assert seen[f"{INTERNET}:80"] == "connected", seen
    assert seen[f"{cm.ip}:9618"] == "connected", seen
    # What must not is dropped on the way out: no answer at all, not even a refusal.
    assert seen[f"{METADATA}:80"] == "timeout", seen
    assert seen[f"{elsewhere.ip}:80"] == "timeout", seen
    assert seen[f"{cm.ip}:9619"] == "timeout", seen


def test_the_metadata_stand_in_answers_where_no_policy_stands_in_the_way(pool):
    """The same probe from the outside host on the pod network, which no policy selects,
    reaches the metadata stand-in: it is the policy that keeps jobs from it."""
    elsewhere = next(p for p in pool.pods.values() if p.name == "elsewhere")
    assert connections(elsewhere, [f"{METADATA}:80"]) == {f"{METADATA}:80": "connected"}
