"""Every Kubernetes object the program creates is valid for current Kubernetes versions,
checked strictly (unknown fields are errors) against the OpenAPI schema."""

import kubernetes_validate
import pytest

# The oldest and newest minor versions kubernetes-validate ships that are still in use, and
# the one the real cluster (tests/kube) runs.
KUBERNETES_VERSIONS = ["1.29", "1.33", "1.35", "1.37"]
# A pool that bursts confines its autoscaler with a ValidatingAdmissionPolicy of
# admissionregistration.k8s.io/v1, which Kubernetes serves from 1.30 (README, Versions).
BURSTING_SINCE = "1.30"
BURSTING_VERSIONS = [BURSTING_SINCE] + [v for v in KUBERNETES_VERSIONS if v > BURSTING_SINCE]
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


FIXED_CONFIGS = [{}, {"workers": "0"}, {"createNamespace": "false", "namespace": "default"},
                 {"allowedCidrs": '["192.0.2.0/24"]', "scheddStorageClass": "fast"},
                 {"placement": PLACEMENT, "workerPools": WORKER_POOLS}]
BURSTING_CONFIGS = [{"workers": "0", "maxWorkers": "4", "workerPools": WORKER_POOLS},
                    {"workers": "0", "maxWorkers": "2", "unprivilegedWorkers": "true", "createNamespace": "false"}]


def _validates_strictly(config, version):
    from tests.render import render
    manifests = render(config).manifests()
    assert {m["kind"] for m in manifests} >= {"Secret", "ConfigMap", "Service", "Deployment",
                                                 "PersistentVolumeClaim", "NetworkPolicy"}
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("config", FIXED_CONFIGS)
def test_every_object_validates_strictly(version, config):
    _validates_strictly(config, version)


@pytest.mark.parametrize("version", BURSTING_VERSIONS)
@pytest.mark.parametrize("config", BURSTING_CONFIGS)
def test_every_object_of_a_bursting_pool_validates_strictly(version, config):
    _validates_strictly(config, version)


def test_a_bursting_pools_admission_policy_is_an_api_kubernetes_serves_from_1_30():
    """The README's floor for bursting: the policy's kind is not in 1.29's API, and is in 1.30's."""
    from tests.render import render
    kinds = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    found = [m for m in render(BURSTING_CONFIGS[0]).manifests() if m["kind"] in kinds]
    assert {m["kind"] for m in found} == kinds
    for manifest in found:
        kubernetes_validate.validate(manifest, BURSTING_SINCE, strict=True)
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(manifest, "1.29", strict=True)


def test_the_validator_rejects_what_the_api_would(dev):
    """The check above can fail: an unknown field is an error."""
    deployment = next(m for m in dev.manifests() if m["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_no_object_uses_a_removed_api(dev):
    assert {m["apiVersion"] for m in dev.manifests()} <= {"v1", "apps/v1", "networking.k8s.io/v1"}
    from tests.render import render
    assert {m["apiVersion"] for m in render(BURSTING_CONFIGS[0]).manifests()} <= {
        "v1", "apps/v1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "admissionregistration.k8s.io/v1"}
