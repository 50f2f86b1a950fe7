"""Every Kubernetes object the program creates is valid for current Kubernetes versions,
checked strictly (unknown fields are errors) against the OpenAPI schema."""

import kubernetes_validate
import pytest

# The oldest and newest minor versions kubernetes-validate ships that are still in use, and
# the one the real cluster (tests/kube) runs.
KUBERNETES_VERSIONS = ["1.29", "1.33", "1.35", "1.37"]
# Placement of every kind, per role and per worker pool (README's GPU example, and more).
_AFFINITY = ('{"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": '
             '[{"matchExpressions": [{"key": "node.kubernetes.io/instance-type", "operator": "In", '
             '"values": ["m7i.8xlarge"]}]}]}}}')
PLACEMENT = ('{"centralManager": {"nodeSelector": {"node-role.example.org/services": "true"}, '
             '"priorityClassName": "system-cluster-critical"}, '
             '"worker": {"tolerations": [{"key": "spot", "operator": "Equal", "value": "true", '
             '"effect": "NoSchedule"}]}}')
WORKER_POOLS = ('{"gpu": {"workers": 2, "gpus": 1, "cpu": "4", "memory": "16Gi", "placement": '
                '{"nodeSelector": {"nvidia.com/gpu.present": "true"}, "tolerations": [{"key": "nvidia.com/gpu", '
                '"operator": "Exists", "effect": "NoSchedule"}]}}, '
                '"bigmem": {"memory": "64Gi", "placement": {"affinity": ' + _AFFINITY + '}}}')


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("config", [{}, {"workers": "0"}, {"createNamespace": "false", "namespace": "default"},
                                    {"allowedCidrs": '["192.0.2.0/24"]', "scheddStorageClass": "fast"},
                                    {"placement": PLACEMENT, "workerPools": WORKER_POOLS},
                                    {"workers": "0", "maxWorkers": "4", "workerPools": WORKER_POOLS}])
def test_every_object_validates_strictly(version, config):
    from tests.render import render
    manifests = render(config).manifests()
    assert {m["kind"] for m in manifests} >= {"Secret", "ConfigMap", "Service", "Deployment",
                                                 "PersistentVolumeClaim", "NetworkPolicy"}
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_validator_rejects_what_the_api_would(dev):
    """The check above can fail: an unknown field is an error."""
    deployment = next(m for m in dev.manifests() if m["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_no_object_uses_a_removed_api(dev):
    assert {m["apiVersion"] for m in dev.manifests()} <= {"v1", "apps/v1", "networking.k8s.io/v1"}
