"""The metrics exporter's logic (pool/files/metrics_exporter.py), outside any pod: the
collector's ads in, Prometheus' text format out, read back with Prometheus' own parser
(prometheus_client); its cache, its HTTP server and its token handling."""

import os
import re
import stat
import threading
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.pod_programs import load
from tests.render import REPO
from tests.test_component import DEPLOYMENT

exporter = load("metrics_exporter")

# A pool as the collector shows it: two workers of the default pool (one running a job in a
# dynamic slot), one of pool "gpu", a schedd, two submitters, the central manager's daemons.
ADS = [
    {"MyType": "Machine", "Name": "slot1@w1", "Machine": "w1", "State": "Unclaimed", "Activity": "Idle",
     "Cpus": 1, "Memory": 1024, "WorkerPool": "default"},
    {"MyType": "Machine", "Name": "slot1_1@w1", "Machine": "w1", "State": "Claimed", "Activity": "Busy",
     "Cpus": 1, "Memory": 1024, "WorkerPool": "default"},
    {"MyType": "Machine", "Name": "slot1@w2", "Machine": "w2", "State": "Unclaimed", "Activity": "Idle",
     "Cpus": 2, "Memory": 2048, "WorkerPool": "default"},
    {"MyType": "Machine", "Name": "slot1@g1", "Machine": "g1", "State": "Unclaimed", "Activity": "Idle",
     "Cpus": 4, "Memory": 8192, "GPUs": 2, "WorkerPool": "gpu"},
    {"MyType": "Scheduler", "Name": "schedd-pod", "TotalIdleJobs": 3, "TotalRunningJobs": 1, "TotalHeldJobs": 1},
    {"MyType": "Submitter", "Name": "alice@pool", "IdleJobs": 2, "RunningJobs": 1, "HeldJobs": 0},
    {"MyType": "Submitter", "Name": 'bob "the" \\admin@pool', "IdleJobs": 1, "RunningJobs": 0, "HeldJobs": 1},
    {"MyType": "Negotiator", "Name": "cm", "LastNegotiationCycleEnd0": 1_790_000_000,
     "LastNegotiationCycleDuration0": 0.25, "LastNegotiationCycleMatches0": 1,
     "LastNegotiationCycleRejections0": 2, "LastNegotiationCycleNumIdleJobs0": 3},
    {"MyType": "Collector", "Name": "HTCondor on Kubernetes", "UpdatesTotal": 1234, "UpdatesLost": 5,
     "DroppedQueries": 0, "PendingQueries": 1},
    {"MyType": "DaemonMaster", "Name": "cm"},
    {"MyType": "DaemonMaster", "Name": "schedd-pod"},
    {"MyType": "Accounting", "Name": "alice@pool"},  # a type the metrics do not read
]


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fams: dict, name: str, **labels) -> float:
    family = fams[name.removesuffix("_total")]
    found = [s.value for s in family.samples if s.name == name and s.labels == labels]
    assert len(found) == 1, (name, labels, family.samples)
    return found[0]


@pytest.fixture
def scraped():
    return families(exporter.exposition(exporter.by_type(ADS), queries=7, query_seconds=0.125))


def test_every_declared_metric_parses_with_its_type_and_labels(scraped):
    for metric in exporter.METRICS:
        family = scraped[metric.name.removesuffix("_total") if metric.type == "counter" else metric.name]
        assert family.type == metric.type, metric.name
        assert family.samples, metric.name
        for sample in family.samples:
            assert sample.name == metric.name
            assert tuple(sample.labels) == metric.labels, (metric.name, sample.labels)


def test_names_follow_prometheus_conventions_and_no_label_is_unbounded():
    for metric in exporter.METRICS:
        assert metric.name.startswith("htcondor_")
        assert metric.name.endswith("_total") == (metric.type == "counter"), metric.name
        # Base units: bytes and seconds, never MB or minutes.
        assert not any(unit in metric.name for unit in ("_mb", "_kb", "_minutes", "_ms")), metric.name
        assert set(metric.labels) <= {"pool", "state", "activity", "schedd", "status", "submitter", "type", "name"}


def test_slots_and_their_resources_are_summed_per_pool_and_state(scraped):
    assert value(scraped, "htcondor_slots", pool="default", state="Unclaimed", activity="Idle") == 2
    assert value(scraped, "htcondor_slots", pool="default", state="Claimed", activity="Busy") == 1
    assert value(scraped, "htcondor_slots", pool="gpu", state="Unclaimed", activity="Idle") == 1
    assert value(scraped, "htcondor_slot_cpus", pool="default", state="Unclaimed") == 3
    assert value(scraped, "htcondor_slot_memory_bytes", pool="default", state="Claimed") == 1024 * 2 ** 20
    assert value(scraped, "htcondor_slot_gpus", pool="gpu", state="Unclaimed") == 2
    assert value(scraped, "htcondor_slot_gpus", pool="default", state="Unclaimed") == 0


def test_jobs_per_schedd_and_per_submitter_by_status(scraped):
    assert [value(scraped, "htcondor_jobs", schedd="schedd-pod", status=s) for s in ("idle", "running", "held")] \
        == [3, 1, 1]
    assert value(scraped, "htcondor_submitter_jobs", submitter="alice@pool", status="idle") == 2
    # A label value with quotes and backslashes survives the escaping.
    assert value(scraped, "htcondor_submitter_jobs", submitter='bob "the" \\admin@pool', status="held") == 1


def test_the_negotiators_last_cycle_the_collectors_counters_and_the_daemons(scraped):
    assert value(scraped, "htcondor_negotiator_last_cycle_end_timestamp_seconds") == 1_790_000_000
    assert value(scraped, "htcondor_negotiator_last_cycle_duration_seconds") == 0.25
    assert value(scraped, "htcondor_negotiator_last_cycle_matches") == 1
    assert value(scraped, "htcondor_negotiator_last_cycle_rejections") == 2
    assert value(scraped, "htcondor_negotiator_last_cycle_idle_jobs") == 3
    assert value(scraped, "htcondor_collector_updates_total") == 1234
    assert value(scraped, "htcondor_collector_updates_lost_total") == 5
    assert value(scraped, "htcondor_collector_pending_queries") == 1
    daemons = {(s.labels["type"], s.labels["name"]) for s in scraped["htcondor_daemon_up"].samples}
    assert daemons == {("master", "cm"), ("master", "schedd-pod"), ("collector", "HTCondor on Kubernetes"),
                       ("negotiator", "cm"), ("schedd", "schedd-pod"), ("startd", "w1"), ("startd", "w2"),
                       ("startd", "g1")}
    assert value(scraped, "htcondor_up") == 1
    assert value(scraped, "htcondor_exporter_collector_queries_total") == 7
    assert value(scraped, "htcondor_exporter_collector_query_duration_seconds") == 0.125


def test_a_collector_that_does_not_answer_is_up_0_and_nothing_stale():
    fams = families(exporter.exposition(None, queries=3, query_seconds=10.0))
    assert value(fams, "htcondor_up") == 0
    pool_samples = [s for f in fams.values() for s in f.samples
                    if s.name not in ("htcondor_up", "htcondor_exporter_collector_queries_total",
                                      "htcondor_exporter_collector_query_duration_seconds")]
    assert pool_samples == []
    assert value(fams, "htcondor_exporter_collector_queries_total") == 3


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_scrapes_within_the_cache_time_cost_one_query(capsys):
    clock, calls = Clock(), []

    def fetch():
        calls.append(clock.now)
        if len(calls) == 2:
            raise RuntimeError("Failed to connect to <10.96.0.10:9618>")
        return exporter.by_type(ADS)

    cache = exporter.Cache(fetch, seconds=5, clock=clock)
    snapshots = [cache.get() for _ in range(10)]
    assert len(calls) == 1 and all(s[0] is snapshots[0][0] for s in snapshots)
    clock.now = 5.0
    snapshot, queries, _ = cache.get()  # the query fails: the collector is down
    assert snapshot is None and queries == 2
    clock.now = 10.0
    snapshot, queries, _ = cache.get()
    assert snapshot == exporter.by_type(ADS) and queries == 3
    # One line when the collector stops answering and one when it is back, not one a scrape.
    assert capsys.readouterr().err.splitlines() == [
        "metrics: collector query failed: Failed to connect to <10.96.0.10:9618>",
        "metrics: collector query answers again"]


def test_as_deployed_a_scrape_costs_a_query_once_per_the_readmes_cache_time(dev):
    """The cache main() builds from the rendered exporter's own environment (the pod sets no
    cache time: the exporter's default) keeps an answer as long as the README says, no
    longer, no shorter."""
    readme = (REPO / "README.md").read_text()
    seconds = float(re.search(r"keeps the answer (\d+) seconds", readme).group(1))
    (deployment,) = [d.inputs for d in dev.of_type(DEPLOYMENT) if d.inputs["metadata"]["name"] == "htcondor-metrics"]
    environ = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
               if "value" in e}
    clock, calls = Clock(), []

    def fetch():
        calls.append(clock.now)
        return exporter.by_type(ADS)

    cache = exporter.cache_from_environment(fetch, environ, clock)
    for now in (0.0, seconds / 2, seconds - 0.01):
        clock.now = now
        cache.get()
    assert calls == [0.0]
    clock.now = seconds
    cache.get()
    assert calls == [0.0, seconds]


def test_concurrent_scrapes_wait_for_the_one_query_in_flight():
    started, release, calls = threading.Event(), threading.Event(), []

    def fetch():
        calls.append(1)
        started.set()
        assert release.wait(10)
        return exporter.by_type(ADS)

    cache = exporter.Cache(fetch, seconds=5)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get())) for _ in range(8)]
    threads[0].start()
    assert started.wait(10)
    for t in threads[1:]:
        t.start()
    release.set()
    for t in threads:
        t.join(10)
    assert len(results) == 8 and calls == [1]


@pytest.fixture
def server():
    cache = exporter.Cache(lambda: exporter.by_type(ADS), seconds=5)
    served = exporter.Server(0, lambda: exporter.exposition(*cache.get()))  # as main() serves it
    yield f"http://127.0.0.1:{served.port}"
    served.close()


def test_it_serves_metrics_health_and_nothing_else(server):
    with urllib.request.urlopen(f"{server}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert value(families(response.read().decode()), "htcondor_up") == 1
    with urllib.request.urlopen(f"{server}/healthz", timeout=10) as response:
        assert response.status == 200
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{server}/secrets", timeout=10)
    assert refused.value.code == 404


def test_the_token_is_copied_private_to_the_exporters_user(tmp_path, monkeypatch):
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    (source / "token").write_text("eyJ...")
    os.chmod(source / "token", 0o440)
    (source / "..data").mkdir()  # a Secret volume's own bookkeeping, not a token
    (target / "token").write_text("old")
    monkeypatch.setenv("HTCONDOR_POOL_CREDENTIAL_SOURCE", str(source))
    monkeypatch.setenv("HTCONDOR_POOL_CREDENTIAL_DIR", str(target))
    exporter.install_token()
    assert sorted(p.name for p in target.iterdir()) == ["token"]
    assert (target / "token").read_text() == "eyJ..."
    assert stat.S_IMODE((target / "token").stat().st_mode) == 0o600
