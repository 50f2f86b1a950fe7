"""The autoscaler's Kubernetes identity in a namespace the program creates (Pod Security
`baseline` enforced, which judges pods, never the Jobs that make them), through `pulumi
up` on the real cluster (tests/kube): its own burst worker is admitted, and every Job
that takes more (another Secret, image, service account or token, anything of the node's,
any privilege beyond a worker's) is refused at the Job by the pool's admission policy;
RBAC refuses a bare Pod, a CronJob and reading a Secret; the API server's Pod Security
admission admits the autoscaler's own pod where `restricted` is enforced; `pulumi destroy`
removes the cluster-scoped policy with the rest. tests/test_kube_autoscaling.py runs the same probes
in a namespace without Pod Security labels, beside real burst workers."""

import json

import pytest

from tests.burst_admission_probes import (
    AutoscalerIdentity, check_every_variant_refused_beside_its_control, check_rbac_refuses_pods_cronjobs_and_secrets,
    check_the_policy_type_checks,
)
from tests.kube.kubectl import Kubectl
from tests.kube.pulumi import Project
from tests.test_kube_autoscaling import RESOURCES
from tests.test_kube_walkthrough import local_image_config

NAMESPACE = "admission"


@pytest.fixture(scope="module")
def stack(kube_cluster):
    """A pool that may burst (workers 0, maxWorkers 1) in a namespace of its own; no job is
    ever submitted, so no worker runs."""
    cluster, env = kube_cluster
    kubectl = Kubectl(env)
    project = Project.create(cluster.workdir / "projects" / "admission", env, "dev")
    local_image_config(project, env["HTCONDOR_POOL_TEST_IMAGE"], RESOURCES)
    project.up(namespace=NAMESPACE, workers="0", maxWorkers="1")
    try:
        yield project, kubectl
    finally:
        project.pulumi("destroy", "--yes", check=False)


@pytest.fixture(scope="module")
def identity(stack):
    project, kubectl = stack
    return AutoscalerIdentity(kubectl, NAMESPACE, "htcondor", project.root / "identities")


def test_the_namespace_enforces_pod_security_which_judges_pods_not_jobs(identity):
    labels = identity.admin.json("get", "namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"


def test_its_identity_is_admitted_its_burst_worker_and_refused_more(identity):
    check_the_policy_type_checks(identity)
    check_every_variant_refused_beside_its_control(identity)


def test_its_identity_may_not_create_a_pod_or_cronjob_or_read_a_secret(identity):
    check_rbac_refuses_pods_cronjobs_and_secrets(identity)


def test_pod_security_admission_admits_the_autoscalers_pod_where_restricted(stack):
    """The autoscaler's pod meets Pod Security `restricted`, as the real API server judges it
    (not our reading of the standard): a server-side dry run of its live pod template in a
    namespace enforcing `restricted` (with a service account of its name) is admitted, where
    the same of a root worker's template is refused with the standard's reasons."""
    _, kubectl = stack
    restricted = f"{NAMESPACE}-restricted"
    kubectl("create", "namespace", restricted)
    try:
        kubectl("label", "namespace", restricted, "pod-security.kubernetes.io/enforce=restricted")
        kubectl("-n", restricted, "create", "serviceaccount", "htcondor-autoscaler")

        def dry_run(deployment: str):
            template = kubectl.json("-n", NAMESPACE, "get", "deployment", deployment)["spec"]["template"]
            pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
                   "metadata": {"name": deployment, "namespace": restricted, "labels": template["metadata"]["labels"]}}
            return kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod), check=False)
        admitted = dry_run("htcondor-autoscaler")
        assert admitted.returncode == 0, admitted.stderr
        refused = dry_run("htcondor-worker")
        assert refused.returncode != 0 and 'violates PodSecurity "restricted:latest"' in refused.stderr, refused.stderr
    finally:
        kubectl("delete", "namespace", restricted, "--wait=true", timeout=120, check=False)


def test_destroy_removes_the_cluster_scoped_policy_and_binding(stack, identity):
    project, kubectl = stack
    kinds = "validatingadmissionpolicies,validatingadmissionpolicybindings"
    assert {(p["kind"], p["metadata"]["name"]) for p in kubectl.json("get", kinds)["items"]} >= {
        ("ValidatingAdmissionPolicy", identity.policy), ("ValidatingAdmissionPolicyBinding", identity.policy)}
    project.destroy()
    assert not [p for p in kubectl.json("get", kinds)["items"] if p["metadata"]["name"] == identity.policy]
