"""The pool's metrics on the real cluster (tests/kube), through `pulumi up` with the default
`metrics: true`: the cluster's Prometheus server (started by the harness on the node, with
Prometheus' own example Kubernetes job and a read-only identity) finds the exporter through
the Kubernetes API by its Service's annotations, scrapes it through the NetworkPolicy, and
answers, through its HTTP API, what an admin's dashboard asks: idle slots, running, idle and
held jobs, and a central-manager outage."""

import json
import urllib.parse
import urllib.request

import pytest

from tests.conftest import REPORTS
from tests.htcondor_jobs import SLEEPER, sleeper_submit, submit
from tests.kube.kubectl import KubePod, Kubectl
from tests.kube.pulumi import Project
from tests.podsim.kubelet import wait_until
from tests.test_autoscaler import autoscaler
from tests.test_kube_walkthrough import local_image_config
from tests.test_metrics import dashboard_queries

NAMESPACE = "monitored"
WORKERS = 2
COMPONENT = "app.kubernetes.io/component"
RESOURCES = {"centralManager": {"cpu": "100m", "memory": "256Mi", "disk": "512Mi"},
             "schedd": {"cpu": "200m", "memory": "512Mi", "disk": "1Gi"},
             "worker": {"cpu": "300m", "memory": "512Mi", "disk": "1Gi"}}
IN_POOL = f'namespace="{NAMESPACE}"'


class Prometheus:
    """The cluster's Prometheus, through its HTTP API (`/api/v1/query`)."""

    def __init__(self, url: str):
        self.url = url

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}",
                                    timeout=10) as reply:
            answer = json.loads(reply.read())
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The single value of an expression (e.g. a sum), or None while it has none."""
        result = self.query(expr, at)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, wanted: float, what: str, timeout: float = 120) -> None:
        seen = {}

        def reached():
            seen["last"] = self.value(expr)
            return seen["last"] == wanted
        try:
            wait_until(reached, timeout, 1, what)
        except TimeoutError:
            raise TimeoutError(f"{what}: `{expr}` is {seen.get('last')}, not {wanted}, after {timeout}s") from None


@pytest.fixture(scope="module")
def pool(kube_cluster):
    cluster, env = kube_cluster
    project = Project.create(cluster.workdir / "projects" / "metrics", env, "dev")
    local_image_config(project, env["HTCONDOR_POOL_TEST_IMAGE"], RESOURCES)
    took = project.up(namespace=NAMESPACE, workers=str(WORKERS))
    REPORTS.append(f"real cluster: `pulumi up` of a pool with its exporter: {took:.1f}s")
    kubectl = Kubectl(env)
    try:
        yield project, kubectl, Prometheus(env["HTCONDOR_POOL_TEST_PROMETHEUS"])
    finally:
        project.destroy()


def test_prometheus_finds_the_exporter_through_the_kubernetes_api_and_scrapes_it(pool):
    project, kubectl, prometheus = pool
    assert project.outputs()["metrics_address"] == f"htcondor-metrics.{NAMESPACE}.svc.cluster.local:9720"
    # The target Prometheus discovered from the Service's annotations answers its scrapes.
    prometheus.wait_for(f'up{{{IN_POOL},service="htcondor-metrics"}}', 1, "the exporter's target up")
    prometheus.wait_for(f"htcondor_up{{{IN_POOL}}}", 1, "the collector answering the exporter")
    (pod,) = kubectl.pods(NAMESPACE, f"{COMPONENT}=metrics")
    (target,) = prometheus.query(f'up{{{IN_POOL},service="htcondor-metrics"}}')
    assert target["metric"]["instance"] == f"{pod['status']['podIP']}:9720"


def test_the_unclaimed_slots_are_the_workers(pool):
    _, _, prometheus = pool
    prometheus.wait_for(f'sum(htcondor_slots{{{IN_POOL},state="Unclaimed"}})', WORKERS, "a slot per worker")
    assert prometheus.value(f'sum(htcondor_slot_cpus{{{IN_POOL},state="Unclaimed",pool="default"}})') == WORKERS


def test_more_jobs_than_slots_show_idle_and_running_and_a_held_job_as_held(pool):
    project, kubectl, prometheus = pool
    schedd = KubePod(kubectl, NAMESPACE, "deploy/htcondor-schedd")
    busy = submit(schedd, "busy", SLEEPER, sleeper_submit(600, count=WORKERS + 2, tag="busy"))
    held = submit(schedd, "held", SLEEPER, sleeper_submit(0, "hold = true", tag="held"))
    try:
        prometheus.wait_for(f'sum(htcondor_jobs{{{IN_POOL},status="running"}})', WORKERS, "a job on every slot")
        prometheus.wait_for(f'sum(htcondor_jobs{{{IN_POOL},status="held"}})', 1, "the held job")
        assert prometheus.value(f'sum(htcondor_jobs{{{IN_POOL},status="idle"}})') > 0
        assert prometheus.value(f'sum(htcondor_slots{{{IN_POOL},state="Claimed"}})') == WORKERS
        prometheus.wait_for(f'sum(htcondor_submitter_jobs{{{IN_POOL},status="held"}})', 1, "the submitter's held job")
        # Every query of the Grafana dashboard, asked of the real Prometheus, answers with data;
        # but the burst panel's: this pool cannot burst, so it has no autoscaler serving them
        # (tests/test_kube_autoscaling.py reads those from the autoscaler itself).
        burst_queries = [expr for expr in dashboard_queries() if any(m.name in expr for m in autoscaler.METRICS)]
        assert burst_queries
        for expr in dashboard_queries():
            assert bool(prometheus.query(expr)) is (expr not in burst_queries), expr
    finally:
        schedd.exec(["condor_rm", busy, held], user="submitter")


def test_a_deleted_central_manager_is_htcondor_up_0_until_it_is_back(pool):
    _, kubectl, prometheus = pool
    prometheus.wait_for(f"htcondor_up{{{IN_POOL}}}", 1, "the collector answering")
    (cm,) = kubectl.pods(NAMESPACE, f"{COMPONENT}=central-manager")
    kubectl("-n", NAMESPACE, "delete", "pod", cm["metadata"]["name"], "--wait=false")
    prometheus.wait_for(f"htcondor_up{{{IN_POOL}}}", 0, "the outage seen")
    # Nothing stale meanwhile: no slot is reported while the collector is away.
    assert prometheus.value(f"count(htcondor_slots{{{IN_POOL}}})") is None
    prometheus.wait_for(f"htcondor_up{{{IN_POOL}}}", 1, "the collector back", timeout=180)
    prometheus.wait_for(f'sum(htcondor_slots{{{IN_POOL},state="Unclaimed"}})', WORKERS, "every slot back",
                        timeout=180)
