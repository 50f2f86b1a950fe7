#!/usr/bin/env python3
"""htcondor-pool metrics exporter: the pool's state in Prometheus' text format, on /metrics.

Runs in the pool's own image, with only what it has: Python's standard library and
HTCondor's bindings (`htcondor2`). At scrape time it reads the collector's ads, with an
IDTOKEN whose only scope is READ, in one query for every ad type it needs; the result is
kept CACHE_SECONDS, so a burst of scrapes (several Prometheus replicas, a dashboard's
refresh) costs the collector one query. When the collector does not answer, it serves
`htcondor_up 0` and nothing read from the pool, so a dashboard shows a gap, not stale data.

The metric names, types and labels in METRICS are the contract (README lists them). No
label carries an unbounded value such as a job id: slots and CPUs are summed per worker pool
and state, jobs per schedd and per submitter.

Its logic is pure functions of the ads (`snapshot` in, exposition text out), tested outside
pods (tests/test_metrics_exporter.py); only `query_collector` and `main` touch HTCondor.
"""

import os
import sys
import threading
import time

from pod_token import install_token  # shipped beside this file
from prometheus_text import Metric, Server, render

PORT_ENV = "HTCONDOR_POOL_METRICS_PORT"
CACHE_SECONDS_ENV = "HTCONDOR_POOL_METRICS_CACHE_SECONDS"
DEFAULT_PORT = 9720
DEFAULT_CACHE_SECONDS = 5.0


METRICS = (
    Metric("htcondor_up", "gauge", "1 when the collector answered the last query, else 0."),
    Metric("htcondor_slots", "gauge", "Slots, by worker pool, state and activity.", ("pool", "state", "activity")),
    Metric("htcondor_slot_cpus", "gauge", "CPUs of the slots, by worker pool and state.", ("pool", "state")),
    Metric("htcondor_slot_memory_bytes", "gauge", "Memory of the slots, by worker pool and state.",
           ("pool", "state")),
    Metric("htcondor_slot_gpus", "gauge", "GPUs of the slots, by worker pool and state.", ("pool", "state")),
    Metric("htcondor_jobs", "gauge", "Jobs in each schedd's queue, by status (idle, running, held).",
           ("schedd", "status")),
    Metric("htcondor_submitter_jobs", "gauge", "Jobs of each submitter, by status (idle, running, held).",
           ("submitter", "status")),
    Metric("htcondor_negotiator_last_cycle_end_timestamp_seconds", "gauge",
           "When the negotiator's last cycle ended (Unix time)."),
    Metric("htcondor_negotiator_last_cycle_duration_seconds", "gauge", "How long the negotiator's last cycle took."),
    Metric("htcondor_negotiator_last_cycle_matches", "gauge", "Matches the negotiator's last cycle made."),
    Metric("htcondor_negotiator_last_cycle_rejections", "gauge", "Jobs the negotiator's last cycle rejected."),
    Metric("htcondor_negotiator_last_cycle_idle_jobs", "gauge", "Idle jobs the negotiator's last cycle considered."),
    Metric("htcondor_daemon_up", "gauge", "1 for each daemon with an ad in the collector.", ("type", "name")),
    Metric("htcondor_collector_updates_total", "counter", "Ad updates the collector received."),
    Metric("htcondor_collector_updates_lost_total", "counter", "Ad updates the collector found lost."),
    Metric("htcondor_collector_dropped_queries_total", "counter", "Queries the collector dropped (too many)."),
    Metric("htcondor_collector_pending_queries", "gauge", "Queries waiting in the collector."),
    Metric("htcondor_exporter_collector_queries_total", "counter", "Queries this exporter sent the collector."),
    Metric("htcondor_exporter_collector_query_duration_seconds", "gauge",
           "How long this exporter's last collector query took."),
)
BY_NAME = {m.name: m for m in METRICS}

# What the one query reads: the ad types (MyType) and, of each, the attributes used.
AD_TYPES = {"Machine": "startd", "Scheduler": "schedd", "Submitter": "submitter", "Negotiator": "negotiator",
            "Collector": "collector", "DaemonMaster": "master"}
ATTRIBUTES = ("MyType", "Name", "Machine", "State", "Activity", "Cpus", "Memory", "GPUs", "WorkerPool",
              "TotalIdleJobs", "TotalRunningJobs", "TotalHeldJobs", "IdleJobs", "RunningJobs", "HeldJobs",
              "LastNegotiationCycleEnd0", "LastNegotiationCycleDuration0", "LastNegotiationCycleMatches0",
              "LastNegotiationCycleRejections0", "LastNegotiationCycleNumIdleJobs0",
              "UpdatesTotal", "UpdatesLost", "DroppedQueries", "PendingQueries")
CONSTRAINT = " || ".join(f'MyType == "{t}"' for t in AD_TYPES)
JOB_STATUSES = (("idle", "Idle"), ("running", "Running"), ("held", "Held"))
NEGOTIATOR_ATTRIBUTES = {
    "htcondor_negotiator_last_cycle_end_timestamp_seconds": "LastNegotiationCycleEnd0",
    "htcondor_negotiator_last_cycle_duration_seconds": "LastNegotiationCycleDuration0",
    "htcondor_negotiator_last_cycle_matches": "LastNegotiationCycleMatches0",
    "htcondor_negotiator_last_cycle_rejections": "LastNegotiationCycleRejections0",
    "htcondor_negotiator_last_cycle_idle_jobs": "LastNegotiationCycleNumIdleJobs0",
}
COLLECTOR_ATTRIBUTES = {
    "htcondor_collector_updates_total": "UpdatesTotal",
    "htcondor_collector_updates_lost_total": "UpdatesLost",
    "htcondor_collector_dropped_queries_total": "DroppedQueries",
    "htcondor_collector_pending_queries": "PendingQueries",
}
MIB = 2 ** 20


def by_type(ads: list[dict]) -> dict[str, list[dict]]:
    """The ads of one query, grouped under AD_TYPES' names."""
    grouped = {kind: [] for kind in AD_TYPES.values()}
    for ad in ads:
        kind = AD_TYPES.get(ad.get("MyType"))
        if kind:
            grouped[kind].append(ad)
    return grouped


def _number(ad: dict, attribute: str) -> float | None:
    value = ad.get(attribute)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def samples(snapshot: dict[str, list[dict]] | None) -> dict[str, dict[tuple, float]]:
    """Each metric's samples, by label values (in the metric's label order), from a snapshot
    of the collector's ads (by_type); None when the collector did not answer."""
    out = {m.name: {} for m in METRICS if not m.name.startswith("htcondor_exporter_")}
    out["htcondor_up"][()] = 0.0 if snapshot is None else 1.0
    if snapshot is None:
        return out

    def add(name: str, labels: tuple, value: float) -> None:
        out[name][labels] = out[name].get(labels, 0.0) + value

    for slot in snapshot["startd"]:
        pool, state = str(slot.get("WorkerPool", "")), str(slot.get("State", ""))
        add("htcondor_slots", (pool, state, str(slot.get("Activity", ""))), 1.0)
        add("htcondor_slot_cpus", (pool, state), _number(slot, "Cpus") or 0.0)
        add("htcondor_slot_memory_bytes", (pool, state), (_number(slot, "Memory") or 0.0) * MIB)
        add("htcondor_slot_gpus", (pool, state), _number(slot, "GPUs") or 0.0)
    for schedd in snapshot["schedd"]:
        for status, attribute in JOB_STATUSES:
            add("htcondor_jobs", (str(schedd.get("Name", "")), status),
                _number(schedd, f"Total{attribute}Jobs") or 0.0)
    for submitter in snapshot["submitter"]:
        for status, attribute in JOB_STATUSES:
            add("htcondor_submitter_jobs", (str(submitter.get("Name", "")), status),
                _number(submitter, f"{attribute}Jobs") or 0.0)
    # One negotiator and one collector per pool: should there be more, the first by name.
    for ad in sorted(snapshot["negotiator"], key=lambda a: str(a.get("Name", "")))[:1]:
        for name, attribute in NEGOTIATOR_ATTRIBUTES.items():
            if (value := _number(ad, attribute)) is not None:
                out[name][()] = value
    for ad in sorted(snapshot["collector"], key=lambda a: str(a.get("Name", "")))[:1]:
        for name, attribute in COLLECTOR_ATTRIBUTES.items():
            if (value := _number(ad, attribute)) is not None:
                out[name][()] = value
    for kind in ("master", "collector", "negotiator", "schedd"):
        for ad in snapshot[kind]:
            out["htcondor_daemon_up"][(kind, str(ad.get("Name", "")))] = 1.0
    for machine in {str(slot.get("Machine", "")) for slot in snapshot["startd"]}:
        out["htcondor_daemon_up"][("startd", machine)] = 1.0
    return out


def exposition(snapshot: dict[str, list[dict]] | None, queries: int, query_seconds: float) -> str:
    """Prometheus' text format (0.0.4) of a snapshot, and of this exporter's own counts."""
    values = samples(snapshot)
    values["htcondor_exporter_collector_queries_total"] = {(): float(queries)}
    values["htcondor_exporter_collector_query_duration_seconds"] = {(): float(query_seconds)}
    return render(METRICS, values)


class Cache:
    """The last snapshot, fetched again once older than `seconds`; concurrent scrapes wait
    for the one fetch in flight instead of sending their own."""

    def __init__(self, fetch, seconds: float, clock=time.monotonic):
        self.fetch, self.seconds, self.clock = fetch, seconds, clock
        self.lock = threading.Lock()
        self.fetched_at = None
        self.snapshot = None
        self.queries = 0
        self.query_seconds = 0.0
        self.error = None

    def get(self):
        with self.lock:
            now = self.clock()
            if self.fetched_at is None or now - self.fetched_at >= self.seconds:
                self.queries += 1
                try:
                    self.snapshot, error = self.fetch(), None
                except Exception as exc:  # any failure to read the pool is `htcondor_up 0`
                    self.snapshot, error = None, exc
                self.query_seconds = self.clock() - now
                if (error is None) != (self.error is None):  # a line when the collector goes or returns
                    print(f"metrics: collector query {'failed: ' + str(error) if error else 'answers again'}",
                          file=sys.stderr, flush=True)
                self.error = error
                self.fetched_at = self.clock()
            return self.snapshot, self.queries, self.query_seconds


def query_collector() -> dict[str, list[dict]]:
    """One query of the collector (COLLECTOR_HOST) for every ad type the metrics read."""
    import htcondor2

    ads = htcondor2.Collector().query(htcondor2.AdTypes.Any, constraint=CONSTRAINT, projection=list(ATTRIBUTES))
    return by_type([{key: ad.get(key) for key in ATTRIBUTES if key in ad} for ad in ads])


def cache_from_environment(fetch, environ=os.environ, clock=time.monotonic) -> Cache:
    """The cache main() serves from: CACHE_SECONDS_ENV seconds where the pod sets it, else
    DEFAULT_CACHE_SECONDS."""
    return Cache(fetch, float(environ.get(CACHE_SECONDS_ENV, DEFAULT_CACHE_SECONDS)), clock)


def main() -> None:
    port = int(os.environ.get(PORT_ENV, DEFAULT_PORT))
    cache = cache_from_environment(query_collector)
    install_token()
    Server(port, lambda: exposition(*cache.get()))
    print(f"metrics: serving /metrics on port {port}", file=sys.stderr, flush=True)
    threading.Event().wait()  # the server's threads serve; this one only keeps the process


if __name__ == "__main__":
    main()
