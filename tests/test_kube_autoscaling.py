"""Burst workers on the real cluster (tests/kube), through `pulumi`: a pool of `workers: 0`,
`maxWorkers: 2` and a short `idleShutdownSeconds`, in a namespace it does not own
(`createNamespace: false`). Idle jobs start burst workers (Kubernetes Jobs, never more than
maxWorkers), every job runs once to its end, idle burst workers leave by themselves and
their Jobs complete, a restarted autoscaler counts again from the cluster, `pulumi preview`
sees no change while they run, an `up` that rolls the autoscaler kills none of them, and
`pulumi destroy` leaves no Job or pod. The autoscaler's metrics say what it wants and
what runs, as the cluster shows it.

Its Kubernetes identity may create burst workers and nothing more, in this namespace that
carries no Pod Security labels (tests/burst_admission_probes.py; the same in a namespace
the program creates: tests/test_kube_burst_admission.py), and without its admission
policy in force the autoscaler creates no worker and says why."""

import copy
import json
import os
import signal
import subprocess
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.burst_admission_probes import (
    AutoscalerIdentity, check_every_variant_refused_beside_its_control, check_rbac_refuses_pods_cronjobs_and_secrets,
    check_the_policy_type_checks,
)
from tests.conftest import REPORTS
from tests.htcondor_jobs import (
    SLEEPER, job_rows, sleeper_submit, submit, submit_finish_when_told, tell_to_finish, wait_running, when_answered,
)
from tests.kube.kubectl import KubePod, Kubectl
from tests.kube.pulumi import UP_TIMEOUT, Project
from tests.podsim.kubelet import wait_until
from tests.test_kube_walkthrough import local_image_config

NAMESPACE = "bursting"
MAX_WORKERS = 2
# A taint the pool's infrastructure (central manager, schedd, autoscaler) tolerates and its
# workers do not: with it on the node, a new burst worker stays Pending.
HOLD_TAINT = "htcondor-pool.test/hold=true"
INTERVAL = 5  # the autoscaler decides every 5 s (pool/files/autoscaler.py)
IDLE_SHUTDOWN = 20
BURST = "htcondor-pool/burst=true"
COMPONENT = "app.kubernetes.io/component"
# Small enough that two burst workers fit the node beside the pool; one job per worker
# (each worker's slot has 1 CPU, each job asks for 1).
RESOURCES = {"centralManager": {"cpu": "100m", "memory": "256Mi", "disk": "512Mi"},
             "schedd": {"cpu": "200m", "memory": "512Mi", "disk": "1Gi"},
             "worker": {"cpu": "300m", "memory": "512Mi", "disk": "1Gi"}}


class Bursting:
    """The stack, and what kubectl shows of its burst workers. Every burst Job ever seen is
    remembered: a finished one is deleted a minute later (ttlSecondsAfterFinished)."""

    def __init__(self, project: Project, kubectl: Kubectl):
        self.project, self.kubectl = project, kubectl
        self.seen: set[str] = set()
        self.schedd = KubePod(kubectl, NAMESPACE, "deploy/htcondor-schedd")

    def jobs(self) -> list[dict]:
        items = self.kubectl.json("-n", NAMESPACE, "get", "jobs", "-l", BURST)["items"]
        self.seen |= {job["metadata"]["name"] for job in items}
        return items

    def active(self) -> list[dict]:
        return [job for job in self.jobs() if not job.get("status", {}).get("completionTime")
                and not job.get("status", {}).get("failed")]

    def pods(self) -> list[dict]:
        return self.kubectl.json("-n", NAMESPACE, "get", "pods", "-l", BURST)["items"]

    def autoscaler_metrics(self) -> dict[tuple, float]:
        """The autoscaler's /metrics, read in its own pod: {(name, labels...): value}."""
        fetch = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9720/metrics').read().decode())"
        result = self.kubectl("-n", NAMESPACE, "exec", "deploy/htcondor-autoscaler", "--", "python3", "-c", fetch,
                              check=False, timeout=60)
        if result.returncode != 0:
            return {}
        return {(sample.name, *sorted(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(result.stdout) for sample in family.samples}

    def autoscaler_log(self) -> str:
        return self.kubectl("-n", NAMESPACE, "logs", "deploy/htcondor-autoscaler", check=False).stdout

    def watch_until_completed(self, cluster_id: str, count: int, timeout: float = 300,
                              samples: list | None = None) -> list[list[str]]:
        """Wait for the cluster's jobs to complete, noting every burst Job created meanwhile
        (and, given `samples`, the autoscaler's metrics at each look);
        (ProcId, JobStatus, ExitCode, LastRemoteHost, NumJobStarts) per job."""
        def done():
            self.jobs()
            if samples is not None:
                samples.append(self.autoscaler_metrics())
            rows = when_answered(lambda: job_rows(self.schedd, "condor_history", cluster_id, "ProcId", "JobStatus",
                                                  "ExitCode", "LastRemoteHost", "NumJobStarts"))
            return rows if rows is not None and len(rows) >= count else None
        return wait_until(done, timeout, 1, f"{count} job(s) of cluster {cluster_id} to complete")

    def no_burst_worker_left(self, timeout: float) -> None:
        wait_until(lambda: not self.jobs() and not self.pods(), timeout, 2,
                   "every burst Job and pod to be gone")


@pytest.fixture(scope="module")
def bursting(kube_cluster):
    cluster, env = kube_cluster
    kubectl = Kubectl(env)
    kubectl("create", "namespace", NAMESPACE)
    project = Project.create(cluster.workdir / "projects" / "bursting", env, "dev")
    local_image_config(project, env["HTCONDOR_POOL_TEST_IMAGE"], RESOURCES)
    # workerGracePeriodSeconds: the least, so that destroy's drain of a busy worker is short.
    # The infrastructure's placement (the autoscaler's too) tolerates HOLD_TAINT; workers do not.
    project.config_set("placement", json.dumps({"centralManager": {"tolerations": [
        {"key": HOLD_TAINT.split("=")[0], "operator": "Exists", "effect": "NoSchedule"}]}}))
    took = project.up(namespace=NAMESPACE, createNamespace="false", workers="0", maxWorkers=str(MAX_WORKERS),
                      idleShutdownSeconds=str(IDLE_SHUTDOWN), workerGracePeriodSeconds="60")
    REPORTS.append(f"real cluster: `pulumi up` of a bursting pool (workers 0, maxWorkers 2): {took:.1f}s")
    try:
        yield Bursting(project, kubectl)
    finally:
        project.pulumi("destroy", "--yes", check=False)
        kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", timeout=300, check=False)


@pytest.fixture(scope="module")
def identity(bursting):
    """Whoever holds the autoscaler's service account (its token)."""
    return AutoscalerIdentity(bursting.kubectl, NAMESPACE, "htcondor", bursting.project.root / "identities")


def test_its_identity_is_admitted_its_burst_worker_and_refused_more_without_pod_security_labels(identity):
    labels = identity.admin.json("get", "namespace", NAMESPACE)["metadata"].get("labels", {})
    assert not [key for key in labels if key.startswith("pod-security.kubernetes.io/")], labels
    check_the_policy_type_checks(identity)
    check_every_variant_refused_beside_its_control(identity)


def test_its_identity_may_not_create_a_pod_or_cronjob_or_read_a_secret(identity):
    check_rbac_refuses_pods_cronjobs_and_secrets(identity)


def test_a_job_of_its_that_mounts_the_pool_password_is_not_created(identity, bursting):
    """The attack as first tried, for real rather than as a dry run: nothing is created."""
    job = copy.deepcopy(identity.burst_job())
    job["spec"]["template"]["spec"]["volumes"].append({"name": "taken", "secret": {"secretName": "htcondor-pool-password"}})
    result = identity.kubectl("create", "-f", "-", "-o", "name", stdin=json.dumps(job), check=False)
    assert result.returncode != 0 and "denied request" in result.stderr, (result.stdout, result.stderr)
    assert not bursting.jobs()


def test_three_jobs_start_at_most_two_burst_workers_and_all_complete(bursting):
    assert not bursting.jobs() and not bursting.pods()  # workers: 0, and nothing idle
    cluster_id = submit(bursting.schedd, "three", SLEEPER, sleeper_submit(15, count=3, tag="three"))
    samples = []
    done = bursting.watch_until_completed(cluster_id, 3, samples=samples)
    assert sorted(row[0] for row in done) == ["0", "1", "2"]
    assert all(row[1] == "4" and row[2] == "0" and row[4] == "1" for row in done), done  # each ran once, to the end
    assert 1 <= len(bursting.seen) <= MAX_WORKERS, bursting.seen
    # Every job ran on a burst worker; Pulumi's Deployment still has its 0 replicas.
    hosts = {row[3] for row in done}
    assert all("htcondor-worker-burst-" in host for host in hosts), hosts
    deployment = bursting.kubectl.json("-n", NAMESPACE, "get", "deployment", "htcondor-worker")
    assert deployment["spec"]["replicas"] == 0
    log = bursting.autoscaler_log()
    assert "autoscaler: pool default: 3 idle jobs fit, 0 workers coming, 2 created" in log, log
    # Its metrics said so meanwhile: three workers wanted (one withheld by maxWorkers), two
    # running, and as many created as Kubernetes shows.
    pool = ("pool", "default")
    assert any(s.get(("htcondor_burst_wanted_workers", pool)) == 3 for s in samples), samples
    assert any(s.get(("htcondor_burst_workers", ("phase", "running"), pool)) == MAX_WORKERS for s in samples), samples
    assert bursting.autoscaler_metrics()[("htcondor_burst_created_workers_total", pool)] == len(bursting.seen)


def test_idle_burst_workers_leave_by_themselves_and_their_jobs_complete(bursting):
    # Each startd leaves after idleShutdownSeconds without a claim; its container exits 0.
    def all_complete():
        jobs = bursting.jobs()
        return jobs if jobs and all(job.get("status", {}).get("succeeded") == 1 for job in jobs) else None
    wait_until(all_complete, IDLE_SHUTDOWN + 120, 2, "every burst Job to complete")
    for pod in bursting.pods():
        (state,) = [s["state"] for s in pod["status"]["containerStatuses"]]
        assert state["terminated"]["exitCode"] == 0, state
    # Kubernetes then deletes them (ttlSecondsAfterFinished): no burst pod is left.
    bursting.no_burst_worker_left(180)


def test_a_job_longer_than_idle_shutdown_runs_once_to_the_end(bursting):
    cluster_id = submit(bursting.schedd, "long", SLEEPER, sleeper_submit(IDLE_SHUTDOWN + 25, tag="long"))
    ((proc, status, exit_code, host, starts),) = bursting.watch_until_completed(cluster_id, 1)
    assert (status, exit_code, starts) == ("4", "0", "1"), (status, exit_code, starts)
    assert "htcondor-worker-burst-" in host


def test_a_restarted_autoscaler_counts_a_starting_worker_and_preview_sees_no_change(bursting):
    """With room for a second worker (maxWorkers 2), one job, and its burst worker held
    Pending (no node will take it: a taint only the pool's infrastructure tolerates), the
    autoscaler is replaced: the new one counts that worker as coming and creates none."""
    bursting.no_burst_worker_left(180)
    bursting.seen.clear()
    node = bursting.kubectl.json("get", "nodes")["items"][0]["metadata"]["name"]
    bursting.kubectl("taint", "nodes", node, f"{HOLD_TAINT}:NoSchedule")
    try:
        cluster_id = submit(bursting.schedd, "restart", SLEEPER, sleeper_submit(10, tag="restart"))
        (job,) = wait_until(lambda: bursting.active() or None, 60, 1, "a burst Job")
        # Burst Jobs are not Pulumi's: a preview while one is there shows no change.
        bursting.project.pulumi("preview", "--expect-no-changes")
        (old,) = bursting.kubectl.pods(NAMESPACE, f"{COMPONENT}=autoscaler")
        bursting.kubectl("-n", NAMESPACE, "delete", "pod", old["metadata"]["name"], "--wait=true")

        deleted_at = time.time()

        def decided() -> float | None:  # the new autoscaler's latest decision since
            pods = bursting.kubectl.pods(NAMESPACE, f"{COMPONENT}=autoscaler")
            if len(pods) != 1 or pods[0]["metadata"]["uid"] == old["metadata"]["uid"]:
                return None
            stamp = bursting.autoscaler_metrics().get(("htcondor_autoscaler_last_decision_timestamp_seconds",))
            return stamp if stamp and stamp > deleted_at else None
        first = wait_until(decided, 120, 1, "the new autoscaler's first decision")
        wait_until(lambda: (decided() or 0) > first, 4 * INTERVAL, 1, "its second decision")
        pods = bursting.pods()
        assert [p["status"]["phase"] for p in pods] == ["Pending"], pods  # still starting
        log = bursting.autoscaler_log()
        assert "autoscaler: pool default: 1 idle jobs fit, 1 workers coming, 0 created" in log, log
        metrics = bursting.autoscaler_metrics()
        assert metrics[("htcondor_burst_created_workers_total", ("pool", "default"))] == 0, metrics
        assert metrics[("htcondor_burst_workers", ("phase", "starting"), ("pool", "default"))] == 1, metrics
        assert [j["metadata"]["name"] for j in bursting.active()] == [job["metadata"]["name"]]
    finally:
        bursting.kubectl("taint", "nodes", node, f"{HOLD_TAINT}:NoSchedule-", check=False)
    ((_, status, _, host, starts),) = bursting.watch_until_completed(cluster_id, 1)
    assert (status, starts) == ("4", "1") and job["metadata"]["name"] in host, host
    assert bursting.seen == {job["metadata"]["name"]}, bursting.seen  # the room for a second stayed unused


def test_an_up_that_rolls_the_autoscaler_kills_no_running_burst_worker(bursting):
    cluster_id = submit(bursting.schedd, "rolled", SLEEPER, sleeper_submit(40, tag="rolled"))
    ((_, host),) = wait_running(bursting.schedd, cluster_id, timeout=180)
    (old,) = bursting.kubectl.pods(NAMESPACE, f"{COMPONENT}=autoscaler")
    bursting.project.up(idleShutdownSeconds=str(IDLE_SHUTDOWN + 1))  # the autoscaler's pod changes
    (new,) = wait_until(lambda: [p for p in bursting.kubectl.pods(NAMESPACE, f"{COMPONENT}=autoscaler")
                                 if p["metadata"]["uid"] != old["metadata"]["uid"]] or None,
                        120, 1, "the autoscaler rolled")
    ((_, status, exit_code, last_host, starts),) = bursting.watch_until_completed(cluster_id, 1)
    assert (status, exit_code, starts, last_host) == ("4", "0", "1", host)


def test_without_its_admission_policy_in_force_the_autoscaler_creates_no_worker_and_says_why(bursting, identity):
    bursting.no_burst_worker_left(180)
    bursting.seen.clear()
    forbidden = copy.deepcopy(identity.burst_job())
    forbidden["spec"]["template"]["spec"]["volumes"].append(
        {"name": "taken", "secret": {"secretName": "htcondor-pool-password"}})
    identity.refused_by_policy(forbidden, "volumes are")
    # As on a cluster that does not enforce it: its binding gone, the same Job is admitted.
    bursting.kubectl("delete", "validatingadmissionpolicybinding", identity.policy)
    try:
        wait_until(lambda: identity.dry_run(forbidden).returncode == 0, 60, 1, "the policy out of force")
        cluster_id = submit(bursting.schedd, "unguarded", SLEEPER, sleeper_submit(5, tag="unguarded"))
        wait_until(lambda: f"the admission policy {identity.policy} is not in force" in bursting.autoscaler_log(),
                   60, 1, "the autoscaler to say that its policy is not in force")
        assert not bursting.jobs()
    finally:
        # What a user does about drift: `pulumi up --refresh` finds the binding gone and
        # creates it again.
        bursting.project.pulumi("up", "--refresh", "--yes", timeout=UP_TIMEOUT)
    bursting.project.pulumi("preview", "--expect-no-changes", timeout=UP_TIMEOUT)
    identity.refused_by_policy(forbidden, "volumes are")
    ((_, status, exit_code, host, starts),) = bursting.watch_until_completed(cluster_id, 1)
    assert (status, exit_code, starts) == ("4", "0", "1") and "htcondor-worker-burst-" in host


def master_log(bursting: Bursting, pod: str) -> str:
    """The MasterLog of a burst worker's pod, read in the pod (while its container runs)."""
    return bursting.kubectl("-n", NAMESPACE, "exec", pod, "--", "sh", "-c",
                            'cat "$(condor_config_val LOG)/MasterLog"', check=False, timeout=60).stdout


def test_a_node_drain_drains_a_burst_worker_through_its_prestop_hook(bursting):
    """A node drain evicts a burst worker like any pod: its preStop hook tells its master to
    shut the startd down peacefully while the job still runs, the job finishes there,
    started once, and the pod goes only then (kubectl drain returns after the job's end)."""
    bursting.no_burst_worker_left(180)
    # It runs until told, and is told once its worker is leaving: within the retirement time a
    # leaving worker gives its jobs here (the grace period of 60 s less 30 s).
    cluster_id = submit_finish_when_told(bursting.schedd, "drained", 240)
    ((_, host),) = wait_running(bursting.schedd, cluster_id, timeout=180)
    (pod,) = [p["metadata"]["name"] for p in bursting.pods() if p["metadata"]["name"] in host]
    assert "Handling DAEMON_OFF_PEACEFUL" not in master_log(bursting, pod)  # the probe reads the live log
    node = bursting.kubectl.json("get", "nodes")["items"][0]["metadata"]["name"]
    drain = subprocess.Popen(["kubectl", "drain", node, f"--pod-selector={BURST}", "--delete-emptydir-data",
                              "--ignore-daemonsets", "--timeout=240s"], env=bursting.kubectl.env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_until(lambda: "Handling DAEMON_OFF_PEACEFUL command for STARTD" in master_log(bursting, pod),
                   60, 1, "the preStop hook's peaceful shutdown at the worker's master")
        assert job_rows(bursting.schedd, "condor_q", cluster_id, "JobStatus") == [["2"]]  # still running
        tell_to_finish(bursting.schedd, "drained")
        said, _ = drain.communicate(timeout=300)
        drained_at = time.time()
        assert drain.returncode == 0, said
    finally:
        try:
            os.killpg(drain.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        drain.wait()
        bursting.kubectl("uncordon", node, check=False)
    ((_, status, code, last_host, starts),) = bursting.watch_until_completed(cluster_id, 1)
    assert (status, code, starts, last_host) == ("4", "0", "1", host)
    ((completed,),) = job_rows(bursting.schedd, "condor_history", cluster_id, "CompletionDate")
    assert int(completed) <= drained_at, (completed, drained_at)  # the pod stayed until the job ended


def test_removing_a_worker_pool_takes_its_burst_workers_drained(bursting):
    """README: removing a pool takes its burst workers too (their Jobs are owned by its
    Deployment), drained as in a scale-down: once the pool is gone from the program, its
    burst worker is leaving while its job still runs (not merely idling out later), and the
    job finishes there, started once."""
    bursting.no_burst_worker_left(180)
    pool_label = "htcondor-pool/worker-pool=extra"
    bursting.project.up(workerPools=json.dumps({"extra": {"workers": 0, "maxWorkers": 1}}))
    # It runs until told, past the removal's `pulumi up` however long that takes, and is
    # told once its worker is leaving: within that worker's retirement time (60 s less 30 s).
    cluster_id = submit_finish_when_told(bursting.schedd, "extra", 240, 'requirements = (TARGET.WorkerPool == "extra")')
    ((_, host),) = wait_running(bursting.schedd, cluster_id, timeout=180)
    assert "htcondor-worker-extra-burst-" in host, host
    bursting.project.up(workerPools="{}")

    def leaving():  # its pod deleted (or gone) by the garbage collector
        pods = bursting.kubectl.json("-n", NAMESPACE, "get", "pods", "-l", pool_label)["items"]
        return all("deletionTimestamp" in p["metadata"] for p in pods)
    wait_until(leaving, 30, 1, "the removed pool's burst worker to be leaving")
    assert job_rows(bursting.schedd, "condor_q", cluster_id, "JobStatus") == [["2"]]  # while its job runs
    tell_to_finish(bursting.schedd, "extra")
    ((_, status, code, last_host, starts),) = bursting.watch_until_completed(cluster_id, 1)
    assert (status, code, starts, last_host) == ("4", "0", "1", host)
    wait_until(lambda: not bursting.kubectl.json("-n", NAMESPACE, "get", "jobs,pods", "-l", pool_label)["items"],
               120, 2, "the removed pool's burst Job and pod to be gone")
    assert "NotFound" in bursting.kubectl("-n", NAMESPACE, "get", "deployment", "htcondor-worker-extra",
                                          check=False).stderr


def test_destroy_leaves_no_burst_job_or_pod(bursting):
    cluster_id = submit(bursting.schedd, "destroyed", SLEEPER, sleeper_submit(600, tag="destroyed"))
    wait_running(bursting.schedd, cluster_id, timeout=180)
    assert bursting.active() and bursting.pods()
    bursting.project.destroy()
    # The namespace is not the stack's and stays; the burst workers go with the worker
    # Deployment that owns them (the busy one drained within its grace period).
    bursting.no_burst_worker_left(240)
    assert bursting.kubectl.json("get", "namespace", NAMESPACE)["status"]["phase"] == "Active"
    assert not bursting.kubectl.json("-n", NAMESPACE, "get", "deployments,jobs,pods")["items"]
    # Its admission policy, cluster-scoped, goes too.
    assert not [p for p in bursting.kubectl.json("get", "validatingadmissionpolicies,validatingadmissionpolicybindings")
                ["items"] if p["metadata"]["name"].endswith(f".{NAMESPACE}")]
