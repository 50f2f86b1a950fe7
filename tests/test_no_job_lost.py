"""No job lost (issue 4), on real HTCondor in the emulator: workers that leave drain first,
a central-manager outage neither stops running jobs nor loses queued ones, and the schedd's
queue and its jobs' files outlive the schedd's pod."""

import base64
import re
import time

import pytest

from pool import idtokens
from pool.roles import metrics, shared
from pool.defaults import ROLES
from pool.password import unscramble
from tests.credential_checks import held_credential, identity_with_token, wait_for_address
from tests.conftest import REPORTS, running_pool
from tests.htcondor_jobs import SLEEPER, output, queue_is_empty, sleeper_submit, submit, wait_completed, wait_running
from tests.podsim.kubelet import wait_until
from tests.render import render
from tests.test_emulated_pool import CM, METRICS, SCHEDD, SERVICE_HOST, WORKER, log_text, the

GRACE = 60  # seconds: jobs get GRACE - 30 to finish when their worker leaves
RETIREMENT = GRACE - 30

# 4 CPUs a worker: 8 one-CPU jobs run at once (the emulator does not enforce the limit).
CONFIG = {"workers": "2", "workerGracePeriodSeconds": str(GRACE),
          "resources": '{"worker": {"cpu": "4", "memory": "1Gi"}}'}


@pytest.fixture(scope="module")
def pool():
    with running_pool("njl", render(CONFIG)) as cluster:
        yield cluster


def newest_worker(cluster):
    return max(cluster.pods_of(WORKER), key=lambda p: p.created)


def wait_slots(cluster):
    """Until the collector lists exactly the current workers' slots, each unclaimed."""
    want = sorted(f"slot1@{p.name}" for p in cluster.pods_of(WORKER))

    def slots():
        result = the(cluster, CM).exec(["condor_status", "-af", "Name", "State"], timeout=30)
        return sorted(result.stdout.split()) == sorted(want + ["Unclaimed"] * len(want))
    return wait_until(slots, 90, 0.5, f"the slots {want}")


def back_to_two_workers(cluster):
    """After a test that scaled down: two workers again, both slots idle in the collector."""
    cluster.scale(WORKER, 2)
    cluster.wait_available(WORKER, 60)
    wait_slots(cluster)


def pod_events(cluster, pod) -> list[str]:
    return [text for _, text in cluster.events if text.startswith(f"pod {pod.name} ")]


def test_scaling_down_lets_a_running_job_finish_on_the_leaving_worker(pool):
    wait_slots(pool)
    schedd, leaving = the(pool, SCHEDD), newest_worker(pool)
    job = submit(schedd, "short", SLEEPER, sleeper_submit(
        15, f'requirements = TARGET.Machine == "{leaving.name}"', tag="short"))
    (_, host), = wait_running(schedd, job)
    assert host.endswith(leaving.name)
    started = time.monotonic()
    pool.scale(WORKER, 1)  # the newest pod goes, as a ReplicaSet picks it
    (row,) = wait_completed(schedd, job, 1, timeout=GRACE + 60)
    wait_until(lambda: leaving.name not in pool.pods, GRACE + 30, 0.5, "the worker pod to go")
    gone = time.monotonic() - started
    _, status, code, host, starts = row
    assert (status, code, starts) == ("4", "0", "1")
    assert host.endswith(leaving.name)
    assert output(schedd, "short.out.0") == f"slept 15s on {leaving.name}\n"
    assert queue_is_empty(schedd, job)
    events = pod_events(pool, leaving)
    assert any("preStop hook exited 0" in e for e in events), events
    assert not any("SIGKILL" in e for e in events), events
    assert_drained_by_the_hook(leaving)
    REPORTS.append(f"scale-down with a running 15 s job: the job finished on the leaving worker, "
                   f"which was gone {gone:.1f}s after the scale-down")


def assert_drained_by_the_hook(worker):
    """The leaving worker was drained by its preStop hook, not by the SIGTERM after it (whose
    graceful shutdown would let a job retire too): its master received the hook's peaceful
    shutdown of the startd, the startd shut down peacefully and exited once its job's starter
    had, and only then did the kubelet's SIGTERM reach the master. The pod stayed until the
    job ended."""
    master, startd = log_text(worker, "MasterLog"), log_text(worker, "StartLog")
    peaceful = master.find("Handling DAEMON_OFF_PEACEFUL command for STARTD")
    assert peaceful >= 0, master[-3000:]
    startd_gone = re.compile(r"The STARTD \(pid \d+\) exited").search(master, peaceful)
    sigterm = master.find("Got SIGTERM", peaceful)
    assert startd_gone and 0 <= startd_gone.start() < sigterm, master[peaceful:]
    shutdown = startd.find("Got SIGTERM. Performing peaceful shutdown.")
    starter_gone = re.compile(r"Starter pid \d+ exited").search(startd, shutdown)
    assert shutdown >= 0 and starter_gone and starter_gone.start() < startd.find("EXITING WITH STATUS 0", shutdown), \
        startd[-3000:]


def test_scaling_down_hands_back_a_job_that_outlasts_the_retirement_time(pool):
    back_to_two_workers(pool)
    schedd, leaving = the(pool, SCHEDD), newest_worker(pool)
    (staying,) = [p for p in pool.pods_of(WORKER) if p.name != leaving.name]
    seconds = RETIREMENT + 15
    # Start it on the leaving worker, then let it run anywhere: it must be able to move.
    job = submit(schedd, "long", SLEEPER, sleeper_submit(
        seconds, f'requirements = TARGET.Machine == "{leaving.name}"', tag="long"))
    (_, host), = wait_running(schedd, job)
    assert host.endswith(leaving.name)
    edited = schedd.exec(["condor_qedit", job, "Requirements", "true"], user="submitter")
    assert edited.returncode == 0, edited.stderr
    pool.scale(WORKER, 1)
    (row,) = wait_completed(schedd, job, 1, timeout=RETIREMENT + seconds + 120)
    _, status, code, host, starts = row
    assert (status, code) == ("4", "0")
    assert host.endswith(staying.name) and int(starts) >= 2, row
    assert output(schedd, "long.out.0") == f"slept {seconds}s on {staying.name}\n"
    assert queue_is_empty(schedd, job)
    assert not any("SIGKILL" in e for e in pod_events(pool, leaving))


def test_a_central_manager_outage_keeps_running_jobs_and_queues_new_ones(pool):
    schedd = the(pool, SCHEDD)
    running = submit(schedd, "during", SLEEPER, sleeper_submit(20, tag="during"))
    wait_running(schedd, running)
    pool.scale(CM, 0)
    wait_until(lambda: not any(p.name.startswith(CM) for p in pool.pods.values()), 60, 0.2,
               "the central manager to be gone")
    queued = submit(schedd, "queued", SLEEPER, sleeper_submit(1, count=3, tag="queued"))
    # The running job finishes while there is no central manager at all.
    wait_completed(schedd, running, 1, timeout=90)
    assert not pool.pods_of(CM)
    assert output(schedd, "during.out.0").startswith("slept 20s on ")
    outage_over = time.monotonic()
    pool.scale(CM, 1)
    rows = wait_completed(schedd, queued, 3, timeout=180)
    assert all(status == "4" and code == "0" for _, status, code, _, _ in rows)
    assert queue_is_empty(schedd, queued)
    REPORTS.append(f"central-manager outage: the running job finished without it; the 3 jobs "
                   f"queued meanwhile completed {time.monotonic() - outage_over:.1f}s after it came back")


def test_the_queue_running_jobs_and_their_files_survive_the_schedd_pod(pool):
    back_to_two_workers(pool)
    old = the(pool, SCHEDD)
    job = submit(old, "spooled", SLEEPER, sleeper_submit(30, count=10, tag="spooled"))
    wait_running(old, job, count=8)  # and 2 idle: the slots hold 8
    deleted = time.monotonic()
    pool.delete_pod(old.name)  # `kubectl delete pod`: SIGTERM, and a replacement at once
    new = wait_until(lambda: next((p for p in pool.pods_of(SCHEDD) if p.ready), None), 180, 0.5,
                     "a replacement schedd to be ready")
    replaced = time.monotonic() - deleted
    assert new.name != old.name
    # ReadWriteOncePod: the replacement started only once the old pod had terminated.
    events = [text for _, text in pool.events]
    assert any(e.startswith(f"pod {new.name} pending: htcondor-schedd-spool in use") for e in events), events
    assert events.index(f"pod {old.name} terminated") < events.index(f"pod {new.name} started ({new.ip})")

    rows = wait_completed(new, job, 10, timeout=300)
    assert sorted(int(r[0]) for r in rows) == list(range(10))
    assert all((status, code) == ("4", "0") for _, status, code, _, _ in rows), rows
    for proc in range(10):
        assert re.fullmatch(r"slept 30s on htcondor-worker-\S+\n", output(new, f"spooled.out.{proc}"))
    assert queue_is_empty(new, job)
    # Without a restart: the 8 running jobs reconnected to the new schedd, and every job
    # started once.
    assert [starts for *_, starts in rows] == ["1"] * 10, rows
    REPORTS.append(f"schedd pod deleted with 8 of 10 jobs running: its replacement was ready "
                   f"{replaced:.1f}s later; all 10 completed, each started once")


def cluster_secret(cluster, role: str) -> bytes:
    """The bytes of `role`'s credential Secret as the cluster holds it."""
    name = f"{metrics.metrics_name('htcondor')}-token" if role == "metrics" else \
        shared.credential_secret_name("htcondor", role)
    (value,) = cluster.secrets[name]["data"].values()
    return base64.b64decode(value)


def test_rotating_the_password_rolls_every_pod_and_the_pool_reforms_under_it(pool):
    """`pulumi config set passwordVersion 2`, seen from the cluster: every credential Secret
    holds new bytes, every pod is replaced with a new credential checksum and holds its new
    credential, the old token is refused where the new one is accepted, and jobs run. (The
    mock's RandomPassword keeps its result until an input changes, as the provider does: a
    passwordVersion that changed nothing would change none of this.)"""
    before = {p.name: p.template["metadata"]["annotations"][shared.CHECKSUM_CREDENTIAL]
              for p in pool.pods.values()}
    holders = (*ROLES, "metrics")  # the metrics exporter holds a token too
    old_secrets = {role: cluster_secret(pool, role) for role in holders}
    old_token = old_secrets["worker"].decode()
    started = time.monotonic()
    pool.apply_rendered(render({**CONFIG, "passwordVersion": "2"}))  # as `pulumi up`
    rolled = time.monotonic() - started
    pods = [p for p in pool.pods.values() if not p.deleting]
    assert sorted(p.deployment for p in pods) == [CM, METRICS, SCHEDD, WORKER, WORKER]
    assert not set(before) & {p.name for p in pods}, "every pod was replaced"
    assert not set(before.values()) & {p.template["metadata"]["annotations"][shared.CHECKSUM_CREDENTIAL]
                                       for p in pods}, "every pod has a new credential checksum"
    secrets = {role: cluster_secret(pool, role) for role in holders}
    assert all(secrets[role] != old_secrets[role] for role in holders), "every credential Secret changed"
    key = unscramble(secrets["centralManager"])
    for pod in pods:
        # The central manager holds the new key; the schedd's and workers' tokens are
        # re-minted from it (the old key's would no longer verify).
        role = {CM: "centralManager", SCHEDD: "schedd", WORKER: "worker", METRICS: "metrics"}[pod.deployment]
        assert held_credential(pod, role) == secrets[role], pod.name
        if role != "centralManager":
            idtokens.verify(secrets[role].decode(), key)
    wait_slots(pool)  # every new worker joined the new central manager
    worker = pool.pods_of(WORKER)[0]
    master = wait_for_address(worker, "master", the(pool, CM).name)
    assert identity_with_token(worker, secrets["worker"].decode(), master) == f"worker@{SERVICE_HOST}"
    assert identity_with_token(worker, old_token, master) is None
    schedd = the(pool, SCHEDD)
    job = submit(schedd, "rotated", SLEEPER, sleeper_submit(1, count=2, tag="rotated"))
    rows = wait_completed(schedd, job, 2, timeout=120)
    assert all((status, code) == ("4", "0") for _, status, code, _, _ in rows)
    REPORTS.append(f"password rotation: all 5 pods rolled onto the new password in {rolled:.1f}s; "
                   "the pool re-formed and ran jobs")
