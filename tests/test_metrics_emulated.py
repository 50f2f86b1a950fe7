"""The metrics exporter against real HTCondor (in the emulator, on each HTCondor the README
names): scraped through its Service from a host the policy allows, as Prometheus would be,
it reports the pool's slots, jobs, held jobs and a collector outage; a host outside
`metricsAllowedCidrs` gets no answer from it; its token may only read."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pool.credentials import METRICS_TOKEN_HOLDER
from pool.defaults import METRICS_PORT
from tests.conftest import running_pool
from tests.credential_checks import (
    NOT_AUTHENTICATED, address_of, advertise, authorizations, denied, granted, refusal, refusals,
)
from tests.htcondor_jobs import SLEEPER, sleeper_submit, submit
from tests.podsim.kubelet import wait_until
from tests.render import render
from tests.test_emulated_pool import CM, METRICS, SCHEDD, SERVICE_HOST, ads, log_size, refused, the

WORKERS = 2
PROMETHEUS_SUBNET, ELSEWHERE_SUBNET = 200, 201  # 10.244.200.0/24 may scrape; 10.244.201.0/24 may not
CONFIG = {"workers": str(WORKERS), "resources": '{"worker": {"cpu": "1", "memory": "512Mi"}}',
          "metricsAllowedCidrs": f'["10.244.{PROMETHEUS_SUBNET}.0/24"]'}
STAND_IN_SUBNET = 202  # a host no policy selects
METRICS_URL = f"http://htcondor-metrics.htcondor.svc.cluster.local:{METRICS_PORT}/metrics"
IDLE = ["python3", "-c", "import time\nwhile True: time.sleep(60)\n"]
# A stand-in exporter on a host no policy selects: one sample, on any path.
STAND_IN = ["python3", "-c", "import http.server\n"
            "class Handler(http.server.BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n"
            "        body = b'# TYPE stand_in gauge\\nstand_in 1\\n'\n"
            "        self.send_response(200)\n"
            "        self.send_header('Content-Length', str(len(body)))\n"
            "        self.end_headers()\n"
            "        self.wfile.write(body)\n"
            f"http.server.HTTPServer(('0.0.0.0', {METRICS_PORT}), Handler).serve_forever()\n"]
# What a scrape gets: the page, or exit status 3 with why it got none (timeout: no answer
# at all, as a NetworkPolicy's drop gives; refused: a reset) and 4 with an HTTP error.
SCRAPE = """\
import socket, sys, urllib.error, urllib.request
try:
    sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
except urllib.error.HTTPError as error:
    print(f"HTTP {error.code}", file=sys.stderr)
    sys.exit(4)
except (urllib.error.URLError, OSError) as error:
    reason = getattr(error, "reason", error)
    if isinstance(reason, (TimeoutError, socket.timeout)):
        print("timeout", file=sys.stderr)
    elif isinstance(reason, ConnectionRefusedError):
        print("refused", file=sys.stderr)
    else:
        raise
    sys.exit(3)
"""


@pytest.fixture(scope="module")
def pool():
    with running_pool("metrics", render(CONFIG)) as cluster:
        cluster.run_host("prometheus", {}, IDLE, subnet=PROMETHEUS_SUBNET)
        cluster.run_host("elsewhere", {}, IDLE, subnet=ELSEWHERE_SUBNET)
        cluster.run_host("stand-in", {}, STAND_IN, subnet=STAND_IN_SUBNET)
        yield cluster


class Unanswered(AssertionError):
    """A scrape that got no page; `outcome` says how: timeout or refused."""

    def __init__(self, outcome: str):
        super().__init__(f"scrape unanswered: {outcome}")
        self.outcome = outcome


def scrape(pool, host: str = "prometheus", url: str = METRICS_URL) -> dict[tuple, float]:
    """Every sample served at `url` (the exporter's, through its Service) as `host` scrapes
    it, by (name, sorted labels); Unanswered when it got no answer, saying how."""
    result = pool.pod(host).exec(["python3", "-c", SCRAPE, url], timeout=30)
    if result.returncode == 3:
        raise Unanswered(result.stderr.strip())
    assert result.returncode == 0, result.stderr
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(result.stdout) for s in family.samples}


def total(samples: dict, name: str, **labels) -> float:
    """The sum of a metric's samples with these labels (0 where it has none: to assert a
    sample is there, read it with samples[(name, labels)])."""
    return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())


def scraped_until(pool, condition, what: str, timeout: float = 120, host: str = "prometheus",
                  url: str = METRICS_URL) -> dict:
    def answered():
        try:
            samples = scrape(pool, host, url)
        except Unanswered:  # not serving yet: not yet
            return None
        return samples if condition(samples) else None
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
    assert ("htcondor_up", ()) in scrape(pool, "prometheus")  # Prometheus' network scrapes it
    # From elsewhere, the same scrape reads a stand-in exporter on a host no policy selects:
    # the probe and that network work ...
    stand_in = f"http://{pool.pod('stand-in').ip}:{METRICS_PORT}/metrics"
    scraped_until(pool, lambda s: s == {("stand_in", ()): 1.0}, "the stand-in's page", timeout=30,
                  host="elsewhere", url=stand_in)
    # ... and the exporter gives it no answer at all: the policy drops its connection.
    with pytest.raises(Unanswered) as unanswered:
        scrape(pool, "elsewhere")
    assert unanswered.value.outcome == "timeout"


METRICS_USER = METRICS_TOKEN_HOLDER.subject(SERVICE_HOST)


def test_the_exporters_token_may_only_read(pool):
    exporter, cm, schedd = the(pool, METRICS), the(pool, CM), the(pool, SCHEDD)
    # At the collector and the central manager's master: READ allowed (the probe works from
    # here), everything else refused to the exporter's own identity.
    for daemon, name in (("collector", f"HTCondor on Kubernetes@{cm.name}"), ("master", cm.name)):
        table = authorizations(exporter, address_of(exporter, daemon, name))
        assert granted(table) == {"READ": METRICS_USER}, daemon
        assert refusals(table) == {denied(METRICS_USER)}, daemon
    # It cannot advertise: the collector refuses it, and the fake ad is nowhere, among the
    # ads the same query lists.
    result = advertise(exporter, "UPDATE_STARTD_AD")
    assert refusal(result.stdout + result.stderr) == denied(METRICS_USER)
    listed = ads(pool)
    assert ("Scheduler", schedd.name) in listed
    assert not any("fake-worker" in name for _, name in listed), listed
    # Nor turn anything off: the central manager's master refuses it ...
    off = exporter.exec(["condor_off", "-addr", address_of(exporter, "master", cm.name)], timeout=60)
    assert refusal(off.stdout + off.stderr) == denied(METRICS_USER), off
    # ... and the schedd's, which holds no key, cannot even check its token (its log shows
    # the attempt arrived).
    before = log_size(schedd, "MasterLog")
    off = exporter.exec(["condor_off", "-addr", address_of(exporter, "master", schedd.name), "-schedd"], timeout=60)
    assert refusal(off.stdout + off.stderr) == NOT_AUTHENTICATED, off
    refused(schedd, "MasterLog", exporter.ip, after=before)
    assert schedd.exec(["condor_q", "-totals"]).returncode == 0  # the schedd still serves
