"""Benchmark scenario 7: the pool on a real single-node Kubernetes (tests/kube) through the
real Pulumi CLI, each figure beside its floor measured on the same node.

- up: `pulumi up --yes` of an empty stack, until it returns (every object created and
  awaited), until every ad shows in `condor_status -any`, and until a first job is done.
  Floor: `kubectl apply --server-side` of the same objects (the inputs `pulumi up` created,
  read back from the stack's state), all at once, until every Deployment has rolled out,
  and until every ad and a first job, as above.
- scale: `pulumi config set workers 16 && pulumi up --yes` (small workers), until it returns
  and until 16 slots show. Floor: `kubectl scale` of the floor's worker Deployment to 16,
  until 16 slots show.
- no change: a `pulumi up --yes` that changes nothing, and `pulumi preview`.
- the engine's share: what a no-op `pulumi up` costs is what every `up` pays before and
  after the cluster's work (the CLI, the program under the language host, the diff, the
  state file); the rest of an `up` is the providers' create-and-await of each object in
  dependency order, which the per-resource timeline (`--event-log`) shows.

    sudo .venv/bin/python -m bench.kube [--json results.json]

Needs root, like the real-cluster tests; builds the cluster's binaries on first use.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from tests.conftest import start_kube_cluster
from tests.htcondor_jobs import SLEEPER, submit, wait_completed, when_answered
from tests.kube.kubectl import Kubectl
from tests.kube.pulumi import UP_TIMEOUT, Project
from tests.podsim.kubelet import wait_until
from tests.test_kube_walkthrough import (
    CM, NAMESPACE, RESOURCES, SCHEDD, WORKER, Stack, ads, expected_ads, local_image_config, sleeper_submit,
)

SCALE_TO = 16
# A worker small enough that 16 fit beside the central manager and schedd on 2 CPUs.
SMALL_WORKER = {"cpu": "100m", "memory": "256Mi", "disk": "512Mi"}
POLL = 0.2


def slots(kubectl: Kubectl, namespace: str = NAMESPACE) -> int:
    """How many slots the pool's collector lists, -1 while it does not answer."""
    result = kubectl("-n", namespace, "exec", f"deploy/{CM}", "--", "condor_status", "-af", "Name",
                     check=False, timeout=60)
    return len(result.stdout.split()) if result.returncode == 0 else -1


def every_ad_and_a_job(stack: Stack, started: float, results: dict, label: str) -> None:
    wait_until(lambda: expected_ads(stack) <= (when_answered(lambda: ads(stack)) or set()), 300, POLL, "every ad")
    results[f"{label}: until every ad is visible"] = time.monotonic() - started
    schedd = stack.pod("schedd")
    wait_completed(schedd, submit(schedd, "first", SLEEPER, sleeper_submit(0, tag="first")), 1, timeout=300)
    results[f"{label}: until a first job is done"] = time.monotonic() - started


def event_timeline(path: Path) -> list[tuple[str, str, float]]:
    """(step, URN, timestamp) of each resource step's start and end in a `--event-log`."""
    timeline = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        for key, phase in (("resourcePreEvent", "start"), ("resOutputsEvent", "done")):
            if key in event:
                timeline.append((phase, event[key]["metadata"]["urn"], event.get("timestamp", 0)))
    return timeline


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how Pulumi's state marks a secret value


def revealed(value):
    """A value from `pulumi stack export --show-secrets`, its secrets as plain values."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return revealed(json.loads(value["plaintext"]))
        return {k: revealed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [revealed(v) for v in value]
    return value


def declared_objects(project: Project) -> list[dict]:
    """The Kubernetes objects of the stack, as the program declared them (their inputs in
    the stack's state), in the order the engine created them. Only in memory: they include
    the Secrets."""
    exported = json.loads(project.pulumi("stack", "export", "--show-secrets").stdout)
    objects = []
    for resource in exported["deployment"]["resources"]:
        if resource["type"].startswith("kubernetes:") and resource.get("custom"):
            inputs = revealed({k: v for k, v in resource["inputs"].items() if not k.startswith("__")})
            if "kind" in inputs:
                objects.append(inputs)
    return objects


def floor(kubectl: Kubectl, objects: list[dict], stack: Stack, results: dict) -> None:
    """The same objects with kubectl alone: one server-side apply, then the rollouts."""
    started = time.monotonic()
    kubectl("apply", "--server-side", "--field-manager=bench-floor", "-f", "-",
            stdin=yaml.safe_dump_all(objects), timeout=120)
    for deployment in (CM, SCHEDD, WORKER):
        kubectl("-n", NAMESPACE, "rollout", "status", f"deployment/{deployment}", "--timeout=600s", timeout=630)
    results["floor: kubectl apply until every Deployment has rolled out"] = time.monotonic() - started
    every_ad_and_a_job(stack, started, results, "floor")
    started = time.monotonic()
    kubectl("-n", NAMESPACE, "scale", f"deployment/{WORKER}", f"--replicas={SCALE_TO}")
    wait_until(lambda: slots(kubectl) == SCALE_TO, 600, POLL, f"{SCALE_TO} slots")
    results[f"floor: kubectl scale 1 -> {SCALE_TO}, until {SCALE_TO} slots show"] = time.monotonic() - started
    kubectl("delete", "namespace", NAMESPACE, "--wait=true", timeout=900)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    cluster, env = start_kube_cluster("bench")
    results: dict[str, float] = {}
    timeline: list = []
    try:
        kubectl = Kubectl(env)
        project = Project.create(cluster.workdir / "projects" / "bench", env, "dev")
        local_image_config(project, env["HTCONDOR_POOL_TEST_IMAGE"], {**RESOURCES, "worker": SMALL_WORKER})
        stack = Stack(project, kubectl, cluster)
        events = cluster.workdir / "projects" / "bench" / "up-events.json"

        started = time.monotonic()
        # --event-log is one of the CLI's debugging flags (PULUMI_DEBUG_COMMANDS).
        project.pulumi("up", "--yes", "--event-log", str(events), timeout=UP_TIMEOUT,
                       env={"PULUMI_DEBUG_COMMANDS": "true"})
        results["pulumi up: until it returns"] = time.monotonic() - started
        every_ad_and_a_job(stack, started, results, "pulumi up")
        timeline = event_timeline(events)
        objects = declared_objects(project)  # one worker, for the floor

        started = time.monotonic()
        project.pulumi("preview", "--expect-no-changes", timeout=UP_TIMEOUT)
        results["pulumi preview (no change)"] = time.monotonic() - started
        started = time.monotonic()
        project.pulumi("up", "--yes", timeout=UP_TIMEOUT)
        results["pulumi up that changes nothing (the engine's fixed share)"] = time.monotonic() - started

        project.config_set("workers", str(SCALE_TO))
        started = time.monotonic()
        project.pulumi("up", "--yes", timeout=UP_TIMEOUT)
        results[f"pulumi up 1 -> {SCALE_TO} workers: until it returns"] = time.monotonic() - started
        wait_until(lambda: slots(kubectl) == SCALE_TO, 600, POLL, f"{SCALE_TO} slots")
        results[f"pulumi up 1 -> {SCALE_TO} workers: until {SCALE_TO} slots show"] = time.monotonic() - started

        started = time.monotonic()
        project.destroy()
        results["pulumi destroy"] = time.monotonic() - started
        floor(kubectl, objects, stack, results)
    finally:
        cluster.down()
    width = max(len(k) for k in results)
    for name, seconds in results.items():
        print(f"{name:<{width}}  {seconds:7.1f} s")
    print("\nper-resource timeline of the first `pulumi up` (seconds from its first step):")
    if timeline:
        first = min(t for _, _, t in timeline)
        for phase, urn, stamp in timeline:
            print(f"  {stamp - first:6.1f}  {phase:<5}  {urn.rsplit('::', 1)[-1]}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"scenario 7 (real cluster, pulumi)": results,
                       "timeline": [[p, u.rsplit("::", 1)[-1], t] for p, u, t in timeline]}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
