"""What the autoscaler's Kubernetes identity may create, as the program renders it (Pulumi
mocks): a ValidatingAdmissionPolicy and its binding whenever a pool bursts, matched on the
autoscaler's service account alone, knowing exactly what the rendered worker Deployments
hold (their images, their ConfigMap and token Secret, their capabilities), in force before
the autoscaler's Role is bound. The real API server judges the rules themselves
(tests/test_kube_autoscaling.py); the autoscaler's own check that the policy is in force
is tested in tests/test_autoscaler.py."""

import json

import pytest

from tests.render import render
from tests.test_autoscaling import BURST, deployments, named

POLICY = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"


@pytest.fixture(scope="module")
def burst():
    return render(BURST)


def the(rendered, type_: str):
    (found,) = rendered.of_type(type_)
    return found


def variables(policy: dict) -> dict[str, str]:
    return {v["name"]: v["expression"] for v in policy["spec"]["variables"]}


@pytest.mark.parametrize("config", [{}, {"workers": "3", "maxWorkers": "3"}])
def test_no_policy_where_no_pool_bursts(config):
    rendered = render(config)
    assert not rendered.of_type(POLICY) and not rendered.of_type(BINDING)


def test_the_policy_judges_the_autoscalers_job_requests_and_is_enforced(burst):
    policy, binding = the(burst, POLICY).inputs, the(burst, BINDING).inputs
    # Cluster-scoped: the name carries the namespace, so pools of one name in two namespaces
    # have a policy each.
    assert policy["metadata"]["name"] == binding["metadata"]["name"] == "htcondor-autoscaler.htcondor"
    assert "namespace" not in policy["metadata"]
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert policy["spec"]["matchConstraints"] == {"resourceRules": [{
        "apiGroups": ["batch"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"], "resources": ["jobs"]}]}
    # The identity matched is the one the autoscaler's pod runs as, and the Role is bound to.
    pod = deployments(burst)["htcondor-autoscaler"]["spec"]["template"]["spec"]
    (subject,) = the(burst, ROLE_BINDING).inputs["subjects"]
    assert subject["name"] == pod["serviceAccountName"]
    (condition,) = policy["spec"]["matchConditions"]
    assert condition["expression"] == (
        f'request.userInfo.username == "system:serviceaccount:{subject["namespace"]}:{subject["name"]}"')


def test_the_policy_knows_what_the_rendered_workers_hold(burst):
    found = deployments(burst)
    values = variables(the(burst, POLICY).inputs)
    # The pools that may burst (default: 0 to 2; gpu: 1 to 3), not the fixed one.
    images = {pool: found[name]["spec"]["template"]["spec"]["containers"][0]["image"]
              for pool, name in (("default", "htcondor-worker"), ("gpu", "htcondor-worker-gpu"))}
    assert json.loads(values["images"]) == images
    worker = found["htcondor-worker"]["spec"]["template"]["spec"]
    config_maps = {v["configMap"]["name"] for v in worker["volumes"] if "configMap" in v}
    secrets = {v["secret"]["secretName"] for v in worker["volumes"] if "secret" in v}
    assert config_maps == {json.loads(values["configMap"])} and secrets == {json.loads(values["tokenSecret"])}
    (container,) = worker["containers"]
    assert json.loads(values["capabilities"]) == container["securityContext"]["capabilities"]["add"]
    assert values["runsAsRoot"] == "true"


def test_unprivileged_workers_allow_no_capability_and_no_root():
    values = variables(the(render({**BURST, "unprivilegedWorkers": "true"}), POLICY).inputs)
    assert values["capabilities"] == "[]" and values["runsAsRoot"] == "false"


def test_the_policy_follows_the_pools_images_and_pools():
    changed = render({**BURST, "workerPools": '{"gpu": {"workers": 1, "maxWorkers": 3, "image": "example.org/gpu:2"}}',
                      "images": '{"worker": "example.org/execute:9"}'})
    assert json.loads(variables(the(changed, POLICY).inputs)["images"]) == {
        "default": "example.org/execute:9", "gpu": "example.org/gpu:2"}


def test_it_is_in_force_before_the_autoscalers_role_is_bound(burst):
    policy, binding, role_binding = the(burst, POLICY), the(burst, BINDING), the(burst, ROLE_BINDING)
    assert policy.urn in binding.dependencies
    assert binding.urn in role_binding.dependencies
    (autoscaler,) = [r for r in burst.resources if r.type.endswith("Deployment") and r.name == "htcondor-autoscaler"]
    assert role_binding.urn in autoscaler.dependencies


def test_the_autoscaler_checks_that_this_policy_refuses_a_job_mounting_its_own_token(burst):
    pod = deployments(burst)["htcondor-autoscaler"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["HTCONDOR_POOL_ADMISSION_POLICY"] == the(burst, POLICY).inputs["metadata"]["name"]
    (own,) = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
    assert env["HTCONDOR_POOL_ADMISSION_CHECK_SECRET"] == own
    # A Secret no worker mounts: the policy must refuse it.
    assert own != named(burst, "kubernetes:core/v1:Secret", "htcondor-worker-token")["metadata"]["name"]
