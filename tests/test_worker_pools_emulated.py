"""Named worker pools (issue 12) on real HTCondor in the emulator: every slot says which pool
it is in, a job picks a pool by it, a GPU job lands only where Kubernetes gave GPUs (HTCondor's
discovery simulating them, see tests/podsim/node.py), and scaling or removing one pool leaves
the other pools' pods alone, a removed pool draining first."""

import json

import pytest

from tests.conftest import REPORTS, running_pool
from tests.htcondor_jobs import (
    SLEEPER, output, queue_is_empty, sleeper_submit, submit, wait_completed, wait_running,
)
from tests.podsim.kubelet import wait_until
from tests.podsim.node import Node
from tests.render import render
from tests.test_emulated_pool import CM, SCHEDD, WORKER, the

BIGMEM, GPU = f"{WORKER}-bigmem", f"{WORKER}-gpu"
GRACE = 60  # seconds: a leaving worker's jobs get GRACE - 30 to finish
NODE_GPUS = 2

POOLS = {"bigmem": {"workers": 1, "cpu": "2", "memory": "3Gi"},
         "gpu": {"workers": 1, "cpu": "2", "gpus": NODE_GPUS}}


def config(pools: dict) -> dict:
    return {"workers": "1", "workerGracePeriodSeconds": str(GRACE), "workerPools": json.dumps(pools)}


@pytest.fixture(scope="module")
def pool():
    with running_pool("wp", render(config(POOLS)), node=Node("wp", gpus=NODE_GPUS)) as cluster:
        yield cluster


def reapply(cluster, pools: dict):
    """`pulumi config set --path workerPools...` and `pulumi up`: same stack, same password."""
    rendered = render(config(pools), password=cluster.rendered.password)
    cluster.apply_rendered(rendered)
    return rendered


def slots(cluster) -> dict[str, list[str]]:
    """Machine -> [WorkerPool, Memory, TotalGPUs] of each partitionable slot."""
    result = the(cluster, CM).exec(["condor_status", "-af", "Machine", "WorkerPool", "Memory", "TotalGPUs"],
                                   timeout=30)
    return {row[0]: row[1:] for row in (line.split() for line in result.stdout.splitlines())}


def wait_slots(cluster):
    """Until the collector lists exactly the current workers' slots, every pool's."""
    want = sorted(p.name for d in cluster.deployments if d.startswith(WORKER) for p in cluster.pods_of(d))

    def listed():
        ads = slots(cluster)
        return ads if sorted(ads) == want else None
    return wait_until(listed, 90, 0.5, f"the slots of {want}")


def untouched(cluster, deployments) -> dict[str, tuple]:
    """Each pod of these Deployments, by name: when it was created and how often it restarted."""
    return {p.name: (p.created, p.restarts) for d in deployments for p in cluster.pods_of(d)}


def test_every_slot_advertises_its_pool_and_its_pools_resources(pool):
    ads = wait_slots(pool)
    default, bigmem, gpu = the(pool, WORKER).name, the(pool, BIGMEM).name, the(pool, GPU).name
    assert {name: ad[0] for name, ad in ads.items()} == {default: "default", bigmem: "bigmem", gpu: "gpu"}
    assert int(ads[bigmem][1]) == 3072 and int(ads[default][1]) < 3072, ads
    # Only the pool Kubernetes gave GPUs has any, as many as it was given.
    assert {name: ad[2] for name, ad in ads.items()} == {default: "0", bigmem: "0", gpu: str(NODE_GPUS)}


def test_a_job_that_asks_for_bigmem_runs_only_on_that_pools_slots(pool):
    wait_slots(pool)
    schedd, bigmem = the(pool, SCHEDD), the(pool, BIGMEM).name
    # Four at once, while the default and GPU pools have free CPUs: none of them goes there.
    job = submit(schedd, "bigmem", SLEEPER, sleeper_submit(2, 'requirements = WorkerPool == "bigmem"',
                                                           count=4, tag="bigmem"))
    rows = wait_completed(schedd, job, 4, timeout=180)
    assert all((status, code) == ("4", "0") and host.endswith(bigmem) for _, status, code, host, _ in rows), rows
    for proc in range(4):
        assert output(schedd, f"bigmem.out.{proc}") == f"slept 2s on {bigmem}\n"


GPU_JOB = """#!/bin/sh
echo "$(hostname) ${CUDA_VISIBLE_DEVICES:-none}"
sleep 5
"""


def test_a_gpu_job_runs_only_on_the_pool_with_gpus_and_is_given_one_of_them(pool):
    wait_slots(pool)
    schedd, gpu = the(pool, SCHEDD), the(pool, GPU).name
    detected = the(pool, CM).exec(["condor_status", "-const", f'Machine == "{gpu}"', "-af", "AssignedGPUs"],
                                  timeout=30).stdout
    gpu_ids = sorted(detected.strip().replace(",", " ").split())
    assert len(gpu_ids) == NODE_GPUS, detected
    # Twice as many jobs as GPUs: the other pools' free CPUs take none of them.
    job = submit(schedd, "gpujob", GPU_JOB, sleeper_submit(0, "request_gpus = 1", count=2 * NODE_GPUS,
                                                            tag="gpujob"))
    rows = wait_completed(schedd, job, 2 * NODE_GPUS, timeout=180)
    assert all((status, code) == ("4", "0") and host.endswith(gpu) for _, status, code, host, _ in rows), rows
    seen = [output(schedd, f"gpujob.out.{proc}").split() for proc in range(2 * NODE_GPUS)]
    assert {host for host, _ in seen} == {gpu}
    # Each job was given one GPU of the pod's by HTCondor, in CUDA_VISIBLE_DEVICES: its id
    # (HTCondor 23) or the full UUID the id abbreviates (25).
    given = [[gpu_id for gpu_id in gpu_ids if device == gpu_id or device.startswith(f"{gpu_id}-")]
             for _, device in seen]
    assert all(len(ids) == 1 for ids in given), (seen, gpu_ids)


def test_scaling_one_pool_changes_only_that_pools_deployment(pool):
    wait_slots(pool)
    others = [CM, SCHEDD, WORKER, GPU]
    before = untouched(pool, others)
    # pulumi config set --path workerPools.bigmem.workers 2 && pulumi up
    rendered = reapply(pool, {**POOLS, "bigmem": {**POOLS["bigmem"], "workers": 2}})
    assert len(pool.pods_of(BIGMEM)) == 2
    assert untouched(pool, others) == before
    ads = wait_slots(pool)
    assert sorted(ad[0] for ad in ads.values()) == ["bigmem", "bigmem", "default", "gpu"]
    assert rendered.outputs["worker_pool_deployment_names"] == {"default": WORKER, "bigmem": BIGMEM, "gpu": GPU}


def test_removing_a_pool_drains_it_and_its_running_job_completes(pool):
    ads = wait_slots(pool)
    schedd = the(pool, SCHEDD)
    leaving = [p.name for p in pool.pods_of(BIGMEM)]
    others = [CM, SCHEDD, WORKER, GPU]
    before = untouched(pool, others)
    job = submit(schedd, "removed", SLEEPER, sleeper_submit(15, 'requirements = WorkerPool == "bigmem"',
                                                            tag="removed"))
    (_, host), = wait_running(schedd, job)
    ran_on = host.split("@")[-1]
    assert ran_on in leaving
    # The pool leaves the stack config; `pulumi up` deletes its Deployment and waits for its
    # pods, each draining first (preStop): the running job finishes where it runs.
    rendered = reapply(pool, {"gpu": POOLS["gpu"]})
    assert BIGMEM not in pool.deployments and not any(p.deployment == BIGMEM for p in pool.pods.values())
    (row,) = wait_completed(schedd, job, 1, timeout=60)
    _, status, code, host, starts = row
    assert (status, code, starts) == ("4", "0", "1"), row
    assert output(schedd, "removed.out.0") == f"slept 15s on {ran_on}\n"
    assert queue_is_empty(schedd, job)
    events = [text for _, text in pool.events]
    for name in leaving:
        assert any(e.startswith(f"pod {name} ") and "preStop hook exited 0" in e for e in events), events
        assert not any(e.startswith(f"pod {name} ") and "SIGKILL" in e for e in events), events
    assert untouched(pool, others) == before
    assert rendered.outputs["worker_pool_deployment_names"] == {"default": WORKER, "gpu": GPU}
    assert sorted(ad[0] for ad in wait_slots(pool).values()) == ["default", "gpu"]
    REPORTS.append(f"worker pool removed with a running 15 s job: it finished on its leaving pod; "
                   f"{len(leaving)} bigmem pod(s) drained, the other pools' {len(ads) - len(leaving)} workers untouched")
