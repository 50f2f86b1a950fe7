"""Benchmark scenarios 1-5 on the pod emulator: real HTCondor running the program's
rendered pods. Every scenario runs twice, with this project's generated configuration and
with the seed's behaviour (HTCondor's default intervals: the program's intervals snippet
emptied), and the table shows both figures and their ratio.

    sudo .venv/bin/python -m bench.pool [--scenarios formation,recovery,jobs,scale-up,scale]
                                        [--json results.json] [--plot scale.png]

Needs root, like the emulator tests. Takes about 25 minutes: with HTCondor's defaults a
replaced central manager waits for the daemons' 300 s updates.
"""

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pool.condor_config import Intervals
from tests.conftest import start_cluster
from tests.htcondor_jobs import USER, QueryFailed, submit, when_answered
from tests.podsim.kubelet import wait_until
from tests.render import render
# Every ad a formed pool shows (each daemon's and each master's), and the one pod of a
# Deployment: as the emulator tests define them.
from tests.test_emulated_pool import CM, SCHEDD, WORKER, expected_ads, the

INTERVALS_SNIPPET = "30-intervals.conf"
PROFILES = ("project", "seed defaults")
SCENARIOS = ("formation", "recovery", "jobs", "scale-up", "scale")
SCALE_WORKERS = (1, 8, 32)
POLL = 0.2


def rendered_pool(profile: str, workers: int):
    """The program's objects for `workers` workers; for the seed profile, with the intervals
    snippet emptied so that HTCondor's defaults apply (300 s updates, 60 s negotiation)."""
    rendered = render({"workers": str(workers), "resources": '{"worker": {"cpu": "1", "memory": "512Mi"}}'})
    if profile == "seed defaults":
        (config_map,) = [c for c in rendered.of_type("kubernetes:core/v1:ConfigMap") if c.name == "htcondor-config"]
        config_map.inputs["data"][INTERVALS_SNIPPET] = "# HTCondor's defaults, as in the seed.\n"
    return rendered


def ads(cluster) -> set[tuple[str, str]]:
    """(MyType, Name) of every ad the collector holds, asked in the central-manager pod."""
    cms = cluster.pods_of(CM)
    if not cms or cms[0].pid1 is None:
        return set()
    result = cms[0].exec(["condor_status", "-any", "-af", "MyType", "Name"], timeout=30)
    return {tuple(line.split(None, 1)) for line in result.stdout.splitlines() if line.strip()}


def started_at(cluster, pod) -> float:
    """When the emulator started `pod`'s container (its event), as time.time()."""
    return next(t for t, text in cluster.events if text.startswith(f"pod {pod.name} started"))


@dataclass
class Watch:
    """Polls the collector in the background and records when each ad first appears."""

    cluster: object
    first_seen: dict = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                now_ads = ads(self.cluster)
            except Exception:  # noqa: BLE001 - a pod going away mid-query
                now_ads = set()
            now = time.time()
            for ad in now_ads:
                self.first_seen.setdefault(ad, now)
            self._stop.wait(POLL)

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join(timeout=60)

    def all_seen(self, want: set, timeout: float) -> float:
        """When the last of `want` was first seen (waits for it)."""
        wait_until(lambda: want <= set(self.first_seen), timeout, POLL, f"ads {sorted(want)}")
        return max(self.first_seen[ad] for ad in want)


def formation(profile: str, workers: int) -> dict:
    """Seconds from the last pod started to every daemon's ad visible (collector,
    negotiator, schedd, every worker's slot), and to every master's ad as well; and from the
    first pod started to every daemon's ad, which counts the pods' starts too."""
    cluster = start_cluster("bench")
    try:
        with Watch(cluster) as watch:
            cluster.apply_rendered(rendered_pool(profile, workers), timeout=600)
            starts = [started_at(cluster, p) for p in cluster.pods.values()]
            want = expected_ads(cluster)
            daemons = watch.all_seen({ad for ad in want if ad[0] != "DaemonMaster"}, timeout=900)
            masters = watch.all_seen(want, timeout=900)
        return {f"pool formation, {workers} worker(s): daemons": daemons - max(starts),
                f"pool formation, {workers} worker(s): and masters": masters - max(starts),
                f"pool formation, {workers} worker(s): daemons, from the first pod's start": daemons - min(starts)}
    finally:
        cluster.teardown()


def recovery(profile: str) -> tuple[float, list]:
    """Seconds from the replacement central manager starting to every schedd and worker ad
    back, and the timeline of that recovery: (seconds, ad) in order of appearance."""
    cluster = start_cluster("bench")
    try:
        cluster.apply_rendered(rendered_pool(profile, 2), timeout=600)
        wait_until(lambda: expected_ads(cluster) <= ads(cluster), 900, POLL, "the pool to form")
        old = the(cluster, CM)
        cluster.delete_pod(old.name)
        new = wait_until(lambda: next((p for p in cluster.pods_of(CM) if p.pid1), None), 120, POLL,
                         "the replacement central manager")
        with Watch(cluster) as watch:
            start = started_at(cluster, new)
            want = {ad for ad in expected_ads(cluster) if ad[0] in ("Scheduler", "Machine")}
            done = watch.all_seen(want, timeout=1200)
            # The rest (masters) for the timeline, briefly; they are not the scenario's target.
            try:
                watch.all_seen(expected_ads(cluster), timeout=max(5.0, done - start))
            except TimeoutError:
                pass
            timeline = sorted((t - start, f"{kind} {name}") for (kind, name), t in watch.first_seen.items())
        return done - start, timeline
    finally:
        cluster.teardown()


TRIVIAL = "#!/bin/sh\nexit 0\n"
SLEEPER = "#!/bin/sh\nsleep \"$1\"\n"


def submit_text(executable: str, count: int, arguments: str = "", tag: str = "job") -> str:
    return (f"executable = {executable}\narguments = {arguments}\nlog = {tag}.log\n"
            f"should_transfer_files = YES\nwhen_to_transfer_output = ON_EXIT\n"
            f"request_cpus = 1\nrequest_memory = 32\nqueue {count}\n")


def completed(schedd, cluster_id: str) -> int:
    """How many jobs of the cluster are in the history (a failed query raises: its message
    must never count as jobs)."""
    result = schedd.exec(["condor_history", cluster_id, "-af", "ProcId"], user=USER, timeout=60)
    if result.returncode != 0:
        raise QueryFailed(f"condor_history failed: {result.stderr.strip()}")
    procs = result.stdout.split()
    assert all(p.isdigit() for p in procs), result.stdout
    return len(procs)


def job_times(schedd, cluster_id: str) -> dict[str, int]:
    """HTCondor's own timestamps of a job (seconds): when it was queued, first started and
    completed."""
    result = schedd.exec(["condor_history", cluster_id, "-af", "QDate", "JobStartDate", "CompletionDate"],
                         user=USER, timeout=60)
    if result.returncode != 0:
        raise QueryFailed(f"condor_history failed: {result.stderr.strip()}")
    (row,) = [line.split() for line in result.stdout.splitlines() if line.strip()]
    return dict(zip(("queued", "started", "completed"), map(int, row)))


def jobs(profile: str) -> dict:
    """On an idle 2-worker pool: submit to first start; 1 job, then 200 trivial jobs, from
    submit to all completed."""
    cluster = start_cluster("bench")
    try:
        cluster.apply_rendered(rendered_pool(profile, 2), timeout=600)
        wait_until(lambda: expected_ads(cluster) <= ads(cluster), 900, POLL, "the pool to form")
        schedd = the(cluster, SCHEDD)
        results = {}

        # The first job on an idle pool: from its submission (QDate) to its start
        # (JobStartDate), by the schedd's own clock: the negotiation, the claim, the shadow
        # and the starter. Whole seconds, as HTCondor keeps them.
        first = submit(schedd, "first", SLEEPER, submit_text("first.sh", 1, "5", "first"))
        wait_until(lambda: when_answered(lambda: completed(schedd, first)) == 1, 900, POLL, "the first job to finish")
        times = job_times(schedd, first)
        results["first job start (QDate to JobStartDate, whole seconds)"] = times["started"] - times["queued"]

        for count, label in ((1, "1 job"), (200, "200 trivial jobs")):
            tag = f"batch{count}"
            started = time.time()
            cluster_id = submit(schedd, tag, TRIVIAL, submit_text(f"{tag}.sh", count, tag=tag))
            wait_until(lambda: when_answered(lambda: completed(schedd, cluster_id)) == count, 3600, POLL,
                       f"{label} to complete")
            results[label] = time.time() - started
        return results
    finally:
        cluster.teardown()


def scale_up(profile: str) -> float:
    """Seconds from a new worker pod starting to its slot running a job that was waiting."""
    cluster = start_cluster("bench")
    try:
        cluster.apply_rendered(rendered_pool(profile, 2), timeout=600)
        wait_until(lambda: expected_ads(cluster) <= ads(cluster), 900, POLL, "the pool to form")
        schedd = the(cluster, SCHEDD)
        busy = submit(schedd, "busy", SLEEPER, submit_text("busy.sh", 2, "3600", "busy"))
        wait_until(lambda: schedd.exec(["condor_q", busy, "-af", "JobStatus"], user=USER).stdout.split()
                   == ["2", "2"], 900, POLL, "both workers to be busy")
        waiting = submit(schedd, "waiting", SLEEPER, submit_text("waiting.sh", 1, "3600", "waiting"))
        before = {p.name for p in cluster.pods_of(WORKER)}
        cluster.scale(WORKER, 3)
        (new,) = [p for p in cluster.pods_of(WORKER) if p.name not in before]
        def running_on():
            fields = schedd.exec(["condor_q", waiting, "-af", "JobStatus", "RemoteHost"], user=USER).stdout.split()
            return fields[1] if fields[:1] == ["2"] else None
        host = wait_until(running_on, 900, POLL, "the waiting job to start")
        assert host.endswith(new.name), host
        return time.time() - started_at(cluster, new)
    finally:
        cluster.teardown()


def ratio(project: float, seed: float) -> str:
    return f"{seed / project:.1f}x" if project > 0 else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated, among {', '.join(SCENARIOS)}")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--plot", type=Path, help="plot the scale scenario to this PNG")
    args = parser.parse_args()
    if args.plot:
        import importlib.util
        if importlib.util.find_spec("matplotlib") is None:  # checked before a 25-minute run
            parser.error("--plot needs matplotlib: .venv/bin/pip install -r requirements-bench.txt")
    if os.geteuid() != 0:
        parser.error("the pod emulator needs root (namespaces, mounts, debootstrap): run it as root")
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for name in chosen:
        if name not in SCENARIOS:
            parser.error(f"--scenarios: {name!r} is not allowed; expected some of {', '.join(SCENARIOS)}")
    intervals = Intervals()
    print(f"project: updates every {intervals.update}s, negotiation every {intervals.negotiator}s "
          f"(cycles {intervals.negotiator_cycle_delay}s apart at least); seed defaults: 300s, 60s, 20s",
          flush=True)

    rows, results = [], {"rows": [], "timeline": [], "scale": {}}
    for name in chosen:
        figures = {}
        for profile in PROFILES:
            print(f"-- {name} ({profile})", flush=True)
            if name == "formation":
                figures[profile] = formation(profile, 2)
            elif name == "recovery":
                seconds, timeline = recovery(profile)
                figures[profile] = {"central-manager recovery": seconds}
                results["timeline"].append({"profile": profile, "events": timeline})
            elif name == "jobs":
                figures[profile] = jobs(profile)
            elif name == "scale-up":
                figures[profile] = {"scale-up: new worker to job matched": scale_up(profile)}
            elif name == "scale":
                figures[profile] = {k: v for n in SCALE_WORKERS for k, v in formation(profile, n).items()}
                results["scale"][profile] = {str(n): figures[profile][f"pool formation, {n} worker(s): daemons"]
                                             for n in SCALE_WORKERS}
            print(f"   {figures[profile]}", flush=True)
        for label in figures["project"]:
            project, seed = figures["project"][label], figures["seed defaults"][label]
            rows.append((label, project, seed))
            results["rows"].append({"scenario": label, "project": project, "seed": seed})

    print("\n| scenario | this project (s) | seed defaults (s) | seed / project |")
    print("| --- | ---: | ---: | ---: |")
    for label, project, seed in rows:
        print(f"| {label} | {project:.1f} | {seed:.1f} | {ratio(project, seed)} |")
    for entry in results["timeline"]:
        print(f"\ncentral-manager recovery timeline ({entry['profile']}), seconds after the new pod started:")
        for seconds, ad in entry["events"]:
            print(f"  {seconds:7.1f}  {ad}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.plot and results["scale"]:
        plot(results["scale"], args.plot)


def plot(scale: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(figsize=(6, 4))
    for profile, points in scale.items():
        workers = [int(n) for n in points]
        axes.plot(workers, list(points.values()), marker="o", label=profile)
    axes.set_xlabel("workers")
    axes.set_ylabel("seconds, last pod started to all daemons' ads")
    axes.set_title("Pool formation by pool size (pod emulator, 2 cores)")
    axes.set_xscale("log", base=2)
    axes.set_xticks(SCALE_WORKERS, [str(n) for n in SCALE_WORKERS])
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"plot written to {path}")


if __name__ == "__main__":
    sys.exit(main())
