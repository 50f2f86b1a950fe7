"""Placement per role and named worker pools, as rendered (Pulumi mocks): each pool its own
Deployment with the default worker's drain, probes and least privilege, its slots
advertising WorkerPool, GPUs asked of Kubernetes and discovered by HTCondor."""

import json

from pool.condor_config import GPU_SNIPPET, WORKER_POOL_ATTRIBUTE, WORKER_POOL_ENV
from tests.condor_config_parser import parse
from tests.render import render

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PASSWORD = "the-same-key-for-both-renders"  # the credentials' checksums are in every template


def deployments(rendered) -> dict[str, dict]:
    return {d.inputs["metadata"]["name"]: d.inputs for d in rendered.of_type(DEPLOYMENT)}


def pod(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def test_the_example_stack_has_a_deployment_per_pool_and_names_them():
    rendered = render(stack="gpu-example")
    found = deployments(rendered)
    assert {"htcondor-worker", "htcondor-worker-gpu", "htcondor-worker-bigmem"} <= set(found)
    assert rendered.outputs["worker_pool_deployment_names"] == {
        "default": "htcondor-worker", "gpu": "htcondor-worker-gpu", "bigmem": "htcondor-worker-bigmem"}
    assert [found[n]["spec"]["replicas"] for n in ("htcondor-worker", "htcondor-worker-gpu", "htcondor-worker-bigmem")] \
        == [4, 2, 1]
    # No Deployment's selector takes another's pods.
    selectors = [d["spec"]["selector"]["matchLabels"] for d in found.values()]
    for d in found.values():
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert sum(all(labels.get(k) == v for k, v in s.items()) for s in selectors) == 1, d["metadata"]["name"]


def test_a_pool_takes_the_default_workers_values_where_unset_and_its_own_where_set():
    found = deployments(render(stack="gpu-example"))
    default, gpu, bigmem = (pod(found[n]) for n in ("htcondor-worker", "htcondor-worker-gpu", "htcondor-worker-bigmem"))
    container = lambda p: p["containers"][0]  # noqa: E731
    assert container(gpu)["resources"]["limits"] == {"cpu": "8", "memory": "32Gi", "ephemeral-storage": "100Gi",
                                                     "nvidia.com/gpu": "1"}
    # cpu and disk: the default worker's
    assert container(bigmem)["resources"]["limits"] == {"cpu": "1", "memory": "256Gi", "ephemeral-storage": "10Gi"}
    assert container(bigmem)["image"] == container(default)["image"]
    for p in (gpu, bigmem):
        # The default worker's drain, grace period, probes and least privilege.
        for key in ("terminationGracePeriodSeconds", "securityContext", "automountServiceAccountToken"):
            assert p[key] == default[key], key
        for key in ("lifecycle", "readinessProbe", "livenessProbe", "securityContext"):
            assert container(p)[key] == container(default)[key], key
    assert gpu["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert gpu["tolerations"] == [{"operator": "Exists", "key": "nvidia.com/gpu", "effect": "NoSchedule"}]
    assert "nodeSelector" not in default and "tolerations" not in default


def test_every_slot_advertises_its_pool_and_only_gpu_pools_discover_gpus():
    rendered = render(stack="gpu-example")
    found = deployments(rendered)
    (config_map,) = [c for c in rendered.of_type("kubernetes:core/v1:ConfigMap") if c.name == "htcondor-config"]
    worker_conf = parse(config_map.inputs["data"]["50-role-worker.conf"])
    # A string attribute, from the pod's environment (set per Deployment, below).
    assert worker_conf[WORKER_POOL_ATTRIBUTE.upper()] == f'"$ENV({WORKER_POOL_ENV})"'
    assert WORKER_POOL_ATTRIBUTE in worker_conf["STARTD_ATTRS"].split()
    assert "use FEATURE:GPUs" in config_map.inputs["data"][GPU_SNIPPET].splitlines()
    for name, pool, gpus in (("htcondor-worker", "default", False), ("htcondor-worker-gpu", "gpu", True),
                             ("htcondor-worker-bigmem", "bigmem", False)):
        container = pod(found[name])["containers"][0]
        assert {"name": WORKER_POOL_ENV, "value": pool} in container["env"], name
        mounted = [item["key"] for v in pod(found[name])["volumes"] if "configMap" in v for item in v["configMap"]["items"]]
        assert (GPU_SNIPPET in mounted) == gpus, name


def test_scaling_one_pool_changes_only_its_deployment():
    before = deployments(render(stack="gpu-example", password=PASSWORD))
    pools = json.loads(json.dumps({"gpu": {"workers": 3, "gpus": 1, "cpu": "8", "memory": "32Gi", "placement": {
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}},
        "bigmem": {"workers": 1, "memory": "256Gi", "placement": {
            "nodeSelector": {"node.kubernetes.io/instance-type": "r7i.8xlarge"}}}}))
    after = deployments(render({"workerPools": json.dumps(pools)}, stack="gpu-example", password=PASSWORD))
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {"htcondor-worker-gpu"}
    assert after["htcondor-worker-gpu"]["spec"]["replicas"] == 3


def test_adding_pools_leaves_the_default_pool_as_it_was():
    """The walkthrough's knob and Deployment do not change: no rollout of the default pool."""
    plain = deployments(render({"workers": "4"}, stack=None, password=PASSWORD))
    with_pools = deployments(render(stack="gpu-example", password=PASSWORD))
    assert plain["htcondor-worker"] == with_pools["htcondor-worker"]


def test_placement_goes_into_each_roles_pod_template():
    placement = {"centralManager": {"nodeSelector": {"role": "services"}, "priorityClassName": "critical"},
                 "schedd": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                     {"weight": 1, "preference": {"matchExpressions": [
                         {"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}},
                 "worker": {"tolerations": [{"key": "spot", "operator": "Exists"}]}}
    found = deployments(render({"placement": json.dumps(placement)}))
    assert pod(found["htcondor-central-manager"])["nodeSelector"] == {"role": "services"}
    assert pod(found["htcondor-central-manager"])["priorityClassName"] == "critical"
    assert pod(found["htcondor-schedd"])["affinity"] == placement["schedd"]["affinity"]
    assert pod(found["htcondor-worker"])["tolerations"] == [{"operator": "Exists", "key": "spot"}]
