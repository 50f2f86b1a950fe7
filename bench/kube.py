"""Benchmark scenario 7: the pool on a real single-node Kubernetes (tests/kube), each figure
beside its floor measured on the same node.

- up: from applying the program's objects (as `pulumi up` would, tests/kube/deploy.py) to
  every Deployment available, to every ad visible in `condor_status -any`, and to a first
  job done. Floor: a bare pod of the same image (no HTCondor) until Ready.
- scale: workers 1 -> 16 by applying the changed stack, until 16 slots show. Floor: a
  bare Deployment of 16 pods of the same image until all are Ready.
- no change: what the check behind `pulumi preview --expect-no-changes` costs here (a
  server-side diff of every object). A real `pulumi up` that changes nothing cannot be
  timed until the Pulumi CLI can be built here (README, "The real cluster").

    sudo .venv/bin/python -m bench.kube [--json results.json]

Needs root, like the real-cluster tests; builds the cluster's binaries on first use.
"""

import argparse
import json
import sys
import time

import yaml

from tests.conftest import start_kube_cluster
from tests.htcondor_jobs import submit, wait_completed
from tests.kube.kubectl import Kubectl
from tests.podsim.kubelet import wait_until
from tests.test_kube_walkthrough import NAMESPACE, SLEEPER, Stack, ads, expected_ads, sleeper_submit

SCALE_TO = 16
# A worker small enough that 16 fit beside the central manager and schedd on 2 CPUs.
SMALL_WORKER = {"cpu": "100m", "memory": "256Mi"}
POLL = 0.2


def bare_pods(kubectl: Kubectl, image: str, replicas: int) -> float:
    """Seconds until `replicas` pods of `image` that only sleep are all Ready: the node's
    floor for starting that many containers of this image."""
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"bare-{replicas}", "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": f"bare-{replicas}"}},
                 "template": {"metadata": {"labels": {"app": f"bare-{replicas}"}}, "spec": {
                     "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "bare", "image": image, "command": ["sleep", "infinity"],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}},
    }
    started = time.monotonic()
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(deployment))
    kubectl("rollout", "status", f"deployment/bare-{replicas}", "-n", "default", "--timeout=300s", timeout=330)
    took = time.monotonic() - started
    kubectl("delete", "deployment", f"bare-{replicas}", "-n", "default", "--wait=true", timeout=120)
    wait_until(lambda: not kubectl.pods("default", f"app=bare-{replicas}"), 120, 0.5, "bare pods to go")
    return took


def slots(stack: Stack) -> int:
    return sum(1 for kind, _ in ads(stack) if kind == "Machine")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    cluster, env = start_kube_cluster("bench")
    results: dict[str, float] = {}
    try:
        kubectl = Kubectl(env)
        image = env["HTCONDOR_POOL_TEST_IMAGE"]
        results["floor: one bare pod of the image, until Ready"] = bare_pods(kubectl, image, 1)

        stack = Stack(kubectl, image, cluster)
        stack.config["resources"] = json.dumps({**json.loads(stack.config["resources"]), "worker": SMALL_WORKER})
        started = time.monotonic()
        results["up: until every Deployment is available"] = stack.up()
        wait_until(lambda: expected_ads(stack) <= ads(stack), 300, POLL, "every ad")
        results["up: until every ad is visible"] = time.monotonic() - started
        schedd = stack.pod("schedd")
        wait_completed(schedd, submit(schedd, "first", SLEEPER, sleeper_submit(0, tag="first")), 1, timeout=300)
        results["up: until a first job is done"] = time.monotonic() - started

        results[f"floor: {SCALE_TO} bare pods of the image, until Ready"] = bare_pods(kubectl, image, SCALE_TO)
        started = time.monotonic()
        results[f"scale 1 -> {SCALE_TO}: until the worker Deployment is available"] = stack.up(workers=str(SCALE_TO))
        wait_until(lambda: slots(stack) == SCALE_TO, 600, POLL, f"{SCALE_TO} slots")
        results[f"scale 1 -> {SCALE_TO}: until {SCALE_TO} slots show"] = time.monotonic() - started

        started = time.monotonic()
        assert stack.deployer.has_changes(stack.rendered) == ""
        results["no change: server-side diff of every object (the preview's check)"] = time.monotonic() - started
    finally:
        cluster.down()
    width = max(len(k) for k in results)
    for name, seconds in results.items():
        print(f"{name:<{width}}  {seconds:7.1f} s")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"scenario 7 (real cluster)": results, "namespace": NAMESPACE}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
