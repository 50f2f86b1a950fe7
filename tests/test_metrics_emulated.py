"""The metrics exporter against real HTCondor (in the emulator, on each HTCondor the README
names): scraped through its Service from a host the policy allows, as Prometheus would be,
it reports the pool's slots, jobs, held jobs and a collector outage; a host outside
`metricsAllowedCidrs` cannot reach it; its token may only read."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import running_pool
from tests.htcondor_jobs import SLEEPER, sleeper_submit, submit
from tests.podsim.kubelet import wait_until
from tests.render import render
from tests.test_emulated_pool import CM, SCHEDD, the

WORKERS = 2
PROMETHEUS_SUBNET, ELSEWHERE_SUBNET = 200, 201  # 10.244.200.0/24 may scrape; 10.244.201.0/24 may not
CONFIG = {"workers": str(WORKERS), "resources": '{"worker": {"cpu": "1", "memory": "512Mi"}}',
          "metricsAllowedCidrs": f'["10.244.{PROMETHEUS_SUBNET}.0/24"]'}
METRICS_URL = "http://htcondor-metrics.htcondor.svc.cluster.local:9720/metrics"
IDLE = ["python3", "-c", "import time\nwhile True: time.sleep(60)\n"]
SCRAPE = ("import sys, urllib.request\n"
          "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())\n")


@pytest.fixture(scope="module")
def pool():
    with running_pool("metrics", render(CONFIG)) as cluster:
        cluster.run_host("prometheus", {}, IDLE, subnet=PROMETHEUS_SUBNET)
        cluster.run_host("elsewhere", {}, IDLE, subnet=ELSEWHERE_SUBNET)
        yield cluster


def scrape(pool, host: str = "prometheus") -> dict[tuple, float] | None:
    """Every sample the exporter serves, by (name, sorted labels); None if unreachable."""
    result = pool.pod(host).exec(["python3", "-c", SCRAPE, METRICS_URL], timeout=30)
    if result.returncode != 0:
        return None
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(result.stdout) for s in family.samples}


def total(samples: dict, name: str, **labels) -> float:
    """The sum of a metric's samples with these labels (0 where it has none: to assert a
    sample is there, read it with samples[(name, labels)])."""
    return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())


def scraped_until(pool, condition, what: str, timeout: float = 120) -> dict:
    def answered():
        samples = scrape(pool)
        return samples if samples is not None and condition(samples) else None
    return wait_until(answered, timeout, 0.5, what)


def daemons_up(samples: dict) -> set[str]:
    return {dict(ls)["type"] for (n, ls), v in samples.items() if n == "htcondor_daemon_up" and v == 1}


def test_an_idle_pool_shows_every_worker_unclaimed_and_every_daemon_up(pool):
    # A startd advertises at once, a master on its update timer: a master whose first ad
    # went out before the collector listened is seen an update interval later. Wait for
    # both, within the deadline, rather than racing the first scrape that has the slots.
    every_daemon = {"master", "collector", "negotiator", "schedd", "startd"}
    samples = scraped_until(pool, lambda s: total(s, "htcondor_slots", state="Unclaimed") == WORKERS
                            and daemons_up(s) == every_daemon,
                            f"{WORKERS} Unclaimed slots and every daemon's ad")
    assert total(samples, "htcondor_up") == 1
    assert total(samples, "htcondor_slot_cpus", state="Unclaimed", pool="default") == WORKERS
    assert total(samples, "htcondor_slot_memory_bytes", state="Unclaimed") == WORKERS * 512 * 2 ** 20
    assert total(samples, "htcondor_negotiator_last_cycle_end_timestamp_seconds") > 0
    # The collector's own figures are fresh too: its ad is re-sent every update interval
    # (HTCondor's default: 900 s), so its update count moves within a minute.
    updates = total(samples, "htcondor_collector_updates_total")
    scraped_until(pool, lambda s: total(s, "htcondor_collector_updates_total") > updates,
                  "the collector's update count to move", timeout=60)


def test_more_jobs_than_slots_show_as_running_and_idle_and_a_held_job_as_held(pool):
    schedd = the(pool, SCHEDD)
    submit(schedd, "busy", SLEEPER, sleeper_submit(600, count=WORKERS + 2, tag="busy"))
    submit(schedd, "held", SLEEPER, sleeper_submit(0, "hold = true", tag="held"))
    samples = scraped_until(
        pool, lambda s: total(s, "htcondor_jobs", status="running") == WORKERS
        and total(s, "htcondor_jobs", status="held") == 1, "every slot running a job, and the held job")
    assert total(samples, "htcondor_jobs", status="idle") == 2
    # The negotiator's figures are its last cycle's, fresh: with jobs left idle, every cycle
    # considers them (its ad is re-sent every update interval, not HTCondor's 300 s).
    scraped_until(pool, lambda s: total(s, "htcondor_negotiator_last_cycle_idle_jobs") >= 1,
                  "a negotiation cycle that considered the idle jobs", timeout=60)
    assert total(samples, "htcondor_slots", state="Claimed") == WORKERS
    # The submitter's own demand, as its Submitter ad tells it.
    assert total(samples, "htcondor_submitter_jobs", status="running") == WORKERS
    assert total(samples, "htcondor_submitter_jobs", status="held") == 1
    assert {dict(ls)["submitter"].split("@")[0] for (n, ls) in samples if n == "htcondor_submitter_jobs"} \
        == {"submitter"}


def test_a_collector_outage_is_htcondor_up_0_until_it_is_back(pool):
    scraped_until(pool, lambda s: total(s, "htcondor_up") == 1, "the collector answering")
    pool.scale(CM, 0)
    try:
        # The sample itself, with value 0: a page without it would read as 0 in a sum
        # (total), and pass.
        down = scraped_until(pool, lambda s: s.get(("htcondor_up", ())) == 0, "htcondor_up 0")
        # Nothing stale from before the outage: no slot, job or daemon is reported.
        assert [n for n, _ in down if not n.startswith(("htcondor_up", "htcondor_exporter_"))] == []
    finally:
        pool.scale(CM, 1)
    scraped_until(pool, lambda s: total(s, "htcondor_up") == 1
                  and total(s, "htcondor_slots", state="Unclaimed") == WORKERS, "the pool back", timeout=180)


def test_only_the_allowed_networks_reach_the_exporter(pool):
    assert scrape(pool, "prometheus") is not None  # the probe works from an allowed network
    assert scrape(pool, "elsewhere") is None


def test_the_exporters_token_may_only_read(pool):
    exporter = the(pool, "htcondor-metrics")
    read = exporter.exec(["condor_status", "-af", "Name"])
    assert read.returncode == 0 and read.stdout.strip(), read.stderr  # it reads the pool
    ad = ('MyType = "Machine"\nName = "fake@metrics"\nMachine = "metrics"\nStartdIpAddr = "<10.244.0.99:9618>"\n'
          'MyAddress = "<10.244.0.99:9618>"\nState = "Unclaimed"\nActivity = "Idle"\nRequirements = true\n')
    exporter.exec(["sh", "-c", "cat > /tmp/fake.ad"], stdin=ad)
    advertised = exporter.exec(["condor_advertise", "UPDATE_STARTD_AD", "/tmp/fake.ad"])
    assert advertised.returncode != 0, advertised.stdout  # refused: its token has no ADVERTISE_STARTD
    names = the(pool, CM).exec(["condor_status", "-af", "Name"])
    assert names.returncode == 0 and names.stdout.strip() and "fake@metrics" not in names.stdout
    schedd = the(pool, SCHEDD)
    turned_off = exporter.exec(["condor_off", "-name", schedd.name, "-schedd"])
    assert turned_off.returncode != 0, turned_off.stdout  # no ADMINISTRATOR either
    assert schedd.exec(["condor_q", "-totals"]).returncode == 0  # the schedd still serves
