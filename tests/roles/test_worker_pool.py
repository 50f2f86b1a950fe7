"""pool/roles/worker_pool.py alone: one worker pool's Deployment, of its size, GPUs and
placement, after the central manager."""

import pulumi

from pool.roles import WorkerPool, WorkerPoolArgs
from pool.worker_pools import WorkerPoolSpec
from tests.roles import INSTANCE, NAMESPACE, build, credential, objects, pool_config, urn, waited_for

TYPE = "htcondor:index:WorkerPool"
GPU_POOL = WorkerPoolSpec("gpu", 2, "htcondor/execute:25.0.15-el9", "4", "16Gi", "50Gi", 1,
                          {"nodeSelector": {"gpu": "yes"}}, max_workers=5)


def worker_pool(pool=GPU_POOL, unprivileged=False):
    def program():
        made = WorkerPool(f"{INSTANCE}-worker-{pool.name}", WorkerPoolArgs(
            INSTANCE, NAMESPACE, pool, 900, unprivileged, pool_config(), credential("worker"),
            central_manager=waited_for("central-manager")))
        pulumi.export("deployment_name", made.deployment_name)
    return program


def test_it_holds_its_pools_deployment_of_its_size_and_place():
    rendered = build(worker_pool())
    (deployment,) = objects(rendered, TYPE).values()
    assert deployment.name == rendered.outputs["deployment_name"] == "t-worker-gpu"
    assert urn(rendered, "ConfigMap", "central-manager-waited-for") in deployment.dependencies
    spec = deployment.inputs["spec"]
    assert spec["replicas"] == 2 and spec["strategy"] == {"type": "RollingUpdate"}
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"] == {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "50Gi",
                                                "nvidia.com/gpu": "1"}
    assert pod["nodeSelector"] == {"gpu": "yes"} and pod["terminationGracePeriodSeconds"] == 900
    assert {"name": "HTCONDOR_POOL_WORKER_POOL", "value": "gpu"} in container["env"]
    assert spec["template"]["metadata"]["labels"]["htcondor-pool/worker-pool"] == "gpu"


def test_unprivileged_workers_run_as_condor():
    (deployment,) = objects(build(worker_pool(unprivileged=True)), TYPE).values()
    assert deployment.inputs["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 64
