"""Burst workers on the real cluster (tests/kube), through `pulumi`: a pool of `workers: 0`,
`maxWorkers: 2` and a short `idleShutdownSeconds`, in a namespace it does not own
(`createNamespace: false`). Idle jobs start burst workers (Kubernetes Jobs, never more than
maxWorkers), every job runs once to its end, idle burst workers leave by themselves and
their Jobs complete, a restarted autoscaler counts again from the cluster, `pulumi preview`
sees no change while they run, an `up` that rolls the autoscaler kills none of them, and
`pulumi destroy` leaves no Job or pod. The autoscaler's metrics say what it wants and
what runs, as the cluster shows it."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPORTS
from tests.htcondor_jobs import SLEEPER, job_rows, sleeper_submit, submit, wait_running, when_answered
from tests.kube.kubectl import KubePod, Kubectl
from tests.kube.pulumi import Project
from tests.podsim.kubelet import wait_until
from tests.test_kube_walkthrough import local_image_config

NAMESPACE = "bursting"
MAX_WORKERS = 2
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
    took = project.up(namespace=NAMESPACE, createNamespace="false", workers="0", maxWorkers=str(MAX_WORKERS),
                      idleShutdownSeconds=str(IDLE_SHUTDOWN), workerGracePeriodSeconds="60")
    REPORTS.append(f"real cluster: `pulumi up` of a bursting pool (workers 0, maxWorkers 2): {took:.1f}s")
    try:
        yield Bursting(project, kubectl)
    finally:
        project.pulumi("destroy", "--yes", check=False)
        kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", timeout=300, check=False)


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


def test_a_restarted_autoscaler_counts_again_and_preview_sees_no_change_while_workers_run(bursting):
    bursting.no_burst_worker_left(180)
    bursting.seen.clear()
    cluster_id = submit(bursting.schedd, "restart", SLEEPER, sleeper_submit(45, count=3, tag="restart"))
    wait_running(bursting.schedd, cluster_id, count=MAX_WORKERS, timeout=180)
    assert len(bursting.active()) == MAX_WORKERS
    # Burst Jobs are not Pulumi's: a preview while they run shows no change.
    bursting.project.pulumi("preview", "--expect-no-changes")
    (old,) = bursting.kubectl.pods(NAMESPACE, f"{COMPONENT}=autoscaler")
    bursting.kubectl("-n", NAMESPACE, "delete", "pod", old["metadata"]["name"], "--wait=true")

    def decided():  # the new autoscaler's first decision, counted from the cluster
        pods = bursting.kubectl.pods(NAMESPACE, f"{COMPONENT}=autoscaler")
        return len(pods) == 1 and "workers coming" in bursting.autoscaler_log()
    wait_until(decided, 120, 1, "the new autoscaler's first decision")
    done = bursting.watch_until_completed(cluster_id, 3)
    assert all(row[1] == "4" and row[4] == "1" for row in done), done
    assert len(bursting.seen) == MAX_WORKERS, bursting.seen  # the idle third job started no third worker


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
