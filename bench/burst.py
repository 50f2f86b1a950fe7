"""Benchmark scenario 9: burst workers on the real cluster (tests/kube), through `pulumi`.

- burst: a pool of `workers: 0`, `maxWorkers: N`; N one-CPU jobs submitted at once, until
  all N run (the autoscaler's decision, N Jobs' pods starting, their startds advertising,
  a negotiation cycle).
- fixed: the same pool with `workers: N` already up; N jobs, until all N run (a negotiation
  cycle only).
- floor: what no autoscaler can beat: N worker pods started by `kubectl scale` of the
  worker Deployment, until their N slots show, plus the fixed pool's submit-to-running.
- linger: from the burst's last job's end until every burst Job has completed (its startd
  left after `idleShutdownSeconds` without a claim, its container exited 0).

    sudo .venv/bin/python -m bench.burst [--json results.json]
"""

import argparse
import json
import sys
import time

from bench.kube import slots
from tests.conftest import start_kube_cluster
from tests.htcondor_jobs import SLEEPER, job_rows, sleeper_submit, submit, when_answered
from tests.kube.kubectl import KubePod, Kubectl
from tests.kube.pulumi import Project
from tests.podsim.kubelet import wait_until
from tests.test_kube_walkthrough import local_image_config

N = 4
IDLE_SHUTDOWN = 30
NAMESPACE = "burstbench"
WORKER = "htcondor-worker"
RESOURCES = {"centralManager": {"cpu": "100m", "memory": "256Mi", "disk": "512Mi"},
             "schedd": {"cpu": "200m", "memory": "512Mi", "disk": "1Gi"},
             "worker": {"cpu": "250m", "memory": "384Mi", "disk": "512Mi"}}
POLL = 0.2


def running(schedd: KubePod, cluster_id: str) -> int:
    rows = when_answered(lambda: job_rows(schedd, "condor_q", cluster_id, "JobStatus")) or []
    return sum(1 for row in rows if row == ["2"])


def done(schedd: KubePod, cluster_id: str) -> int:
    return len(when_answered(lambda: job_rows(schedd, "condor_history", cluster_id, "ProcId")) or [])


def until_all_run(schedd: KubePod, seconds: int, tag: str) -> tuple[str, float]:
    started = time.monotonic()
    cluster_id = submit(schedd, tag, SLEEPER, sleeper_submit(seconds, count=N, tag=tag))
    wait_until(lambda: running(schedd, cluster_id) == N, 600, POLL, f"{N} jobs running")
    return cluster_id, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    cluster, env = start_kube_cluster("bench")
    results: dict[str, float] = {}
    project = None
    try:
        kubectl = Kubectl(env)
        project = Project.create(cluster.workdir / "projects" / "burst", env, "dev")
        local_image_config(project, env["HTCONDOR_POOL_TEST_IMAGE"], RESOURCES)
        project.up(namespace=NAMESPACE, workers="0", maxWorkers=str(N), idleShutdownSeconds=str(IDLE_SHUTDOWN),
                   metrics="false")
        schedd = KubePod(kubectl, NAMESPACE, "deploy/htcondor-schedd")
        wait_until(lambda: when_answered(lambda: job_rows(schedd, "condor_q", "-allusers", "ProcId")) is not None,
                   120, 1, "the schedd answering")

        cluster_id, took = until_all_run(schedd, 20, "burst")
        results[f"burst: {N} jobs submitted to an empty pool, until all run"] = took
        wait_until(lambda: done(schedd, cluster_id) == N, 300, POLL, "the burst's jobs done")
        ended = time.monotonic()

        def all_complete():
            jobs = kubectl.json("-n", NAMESPACE, "get", "jobs", "-l", "htcondor-pool/burst=true")["items"]
            return jobs and all(j.get("status", {}).get("succeeded") == 1 for j in jobs)
        wait_until(all_complete, IDLE_SHUTDOWN + 300, POLL, "every burst Job complete")
        results[f"linger: last job's end until every burst Job completed (idleShutdownSeconds {IDLE_SHUTDOWN})"] = \
            time.monotonic() - ended

        # The floor's pod start: the worker Deployment scaled by hand, until its slots show.
        wait_until(lambda: slots(kubectl, NAMESPACE) == 0, 300, 1, "no slot left")
        started = time.monotonic()
        kubectl("-n", NAMESPACE, "scale", f"deployment/{WORKER}", f"--replicas={N}")
        wait_until(lambda: slots(kubectl, NAMESPACE) == N, 300, POLL, f"{N} slots")
        pod_start = time.monotonic() - started
        results[f"floor: kubectl scale 0 -> {N}, until {N} slots show"] = pod_start
        kubectl("-n", NAMESPACE, "scale", f"deployment/{WORKER}", "--replicas=0")
        wait_until(lambda: slots(kubectl, NAMESPACE) == 0, 300, 1, "no slot left")

        project.up(workers=str(N))  # maxWorkers N too: a fixed pool
        wait_until(lambda: slots(kubectl, NAMESPACE) == N, 300, POLL, f"{N} slots")
        _, took = until_all_run(schedd, 5, "fixed")
        results[f"fixed: {N} jobs submitted to {N} idle workers, until all run"] = took
        results["floor: pod start plus a negotiation cycle"] = pod_start + took
    finally:
        try:
            if project is not None:
                project.destroy()
        finally:
            cluster.down()
    width = max(map(len, results))
    for name, seconds in results.items():
        print(f"{name:<{width}}  {seconds:6.1f} s")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
