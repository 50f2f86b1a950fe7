"""pool/roles/autoscaler.py alone: the autoscaler of the worker pools it is given, its
identity and what that may do, its policies, and its Deployment after the workers'."""

import pulumi

from pool import HTCondorPoolArgs
from pool.roles import Autoscaler, AutoscalerArgs
from pool.worker_pools import WorkerPoolSpec
from tests.roles import HOST, INSTANCE, NAMESPACE, build, objects, pool_config, urn, waited_for

TYPE = "htcondor:index:Autoscaler"
IMAGE = "htcondor/execute:25.0.15-el9"
POOLS = [WorkerPoolSpec("default", 1, IMAGE, "1", "2Gi", "10Gi", 0, {}, max_workers=1),
         WorkerPoolSpec("gpu", 0, "example/gpu:1", "4", "16Gi", "50Gi", 1, {}, max_workers=3)]


def autoscaler(network_policy=True, metrics=True):
    def program():
        made = Autoscaler(f"{INSTANCE}-autoscaler", AutoscalerArgs(
            INSTANCE, NAMESPACE, NAMESPACE, "htcondor/cm:25.0.15-el9", {},
            pool_config(HTCondorPoolArgs(max_workers=3, metrics=metrics)), pulumi.Output.secret("test-password"),
            HOST, POOLS, {"gpu": waited_for("t-worker-gpu")}, False, network_policy, after=[waited_for("policy")],
            metrics=metrics, metrics_allowed_cidrs=("0.0.0.0/0",)))
        pulumi.export("deployment_name", made.deployment_name)
    return program


def test_it_holds_its_identity_policies_service_and_deployment():
    rendered = build(autoscaler())
    assert set(objects(rendered, TYPE)) == {
        ("Secret", "t-autoscaler-token"), ("ServiceAccount", "t-autoscaler"), ("Role", "t-autoscaler"),
        ("ValidatingAdmissionPolicy", "t-autoscaler"), ("ValidatingAdmissionPolicyBinding", "t-autoscaler"),
        ("RoleBinding", "t-autoscaler"), ("NetworkPolicy", "t-autoscaler-egress"),
        ("NetworkPolicy", "t-autoscaler-ingress"), ("Service", "t-autoscaler"), ("Deployment", "t-autoscaler")}
    assert rendered.outputs["deployment_name"] == "t-autoscaler"
    found = {name: r for (kind, name), r in objects(build(autoscaler(False, False)), TYPE).items()}
    assert "t-autoscaler-egress" not in found and "t-autoscaler-ingress" not in found


def test_its_role_reads_only_the_bursting_pools_deployments_and_its_jobs_are_their_workers():
    found = objects(build(autoscaler()), TYPE)
    rules = found[("Role", "t-autoscaler")].inputs["rules"]
    assert rules[0]["resourceNames"] == ["t-worker-gpu"]
    variables = {v["name"]: v["expression"] for v in
                 found[("ValidatingAdmissionPolicy", "t-autoscaler")].inputs["spec"]["variables"]}
    assert variables["images"] == '{"gpu": "example/gpu:1"}'
    admission = found[("ValidatingAdmissionPolicy", "t-autoscaler")]
    assert admission.inputs["metadata"]["name"] == f"t-autoscaler.{NAMESPACE}"


def test_it_starts_after_the_worker_deployments_and_its_binding_after_the_admission_policys():
    rendered = build(autoscaler())
    found = objects(rendered, TYPE)
    deployment = found[("Deployment", "t-autoscaler")]
    assert {urn(rendered, "ConfigMap", "t-worker-gpu-waited-for"), urn(rendered, "ConfigMap", "policy-waited-for"),
            urn(rendered, "RoleBinding", "t-autoscaler")} <= set(deployment.dependencies)
    assert urn(rendered, "ValidatingAdmissionPolicyBinding", "t-autoscaler") in \
        found[("RoleBinding", "t-autoscaler")].dependencies
    # It knows every pool's shape, bursting or not.
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    (shapes,) = [e["value"] for e in container["env"] if e["name"] == "HTCONDOR_POOL_BURST_POOLS"]
    assert '"name": "default"' in shapes and '"name": "gpu"' in shapes
