"""What the program registers: resources, parents, ordering, replicas, names, outputs."""

import base64

import pytest

from pool.roles import shared
from tests.render import render

POOL = "htcondor:index:Pool"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def urn_of(rendered, type_, name):
    (match,) = [r for r in rendered.resources if r.type == type_ and r.name == name]
    return match.urn


def test_the_pool_is_one_component_whose_roles_parent_everything(dev):
    (component,) = dev.of_type(POOL)
    assert component.name == "htcondor"
    roles = [r for r in dev.resources if r.type.startswith("htcondor:index:") and r is not component]
    objects = [r for r in dev.resources if not r.type.startswith("htcondor:index:")]
    assert {r.type for r in objects} == {
        "random:index/randomPassword:RandomPassword", "kubernetes:core/v1:Namespace",
        "kubernetes:core/v1:Secret", "kubernetes:core/v1:ConfigMap",
        "kubernetes:core/v1:Service", "kubernetes:core/v1:PersistentVolumeClaim",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy", DEPLOYMENT,
    }
    # Each role is a component of the pool's (tests/test_component_tree.py: which, and what
    # each holds); every object is a role's, but the namespace and the ConfigMap all share.
    assert roles and all(r.parent == component.urn for r in roles)
    own = {(r.type, r.name) for r in objects if r.parent == component.urn}
    assert own == {("kubernetes:core/v1:Namespace", "htcondor-namespace"),
                   ("kubernetes:core/v1:ConfigMap", "htcondor-config")}
    assert all(r.parent in {role.urn for role in roles} for r in objects if (r.type, r.name) not in own)


def test_objects_have_the_walkthroughs_names(dev):
    names = {(r.kind, r.inputs["metadata"]["name"]) for r in dev.resources if r.type.startswith("kubernetes:")}
    assert {("Deployment", "htcondor-central-manager"), ("Deployment", "htcondor-schedd"),
            ("Deployment", "htcondor-worker"), ("Service", "htcondor-central-manager")} <= names


def test_central_manager_waits_for_its_config_password_and_policy_not_the_services_await(dev):
    deps = {d for r in dev.of_type(DEPLOYMENT) if r.name == "htcondor-central-manager" for d in r.dependencies}
    for type_, name in [("kubernetes:core/v1:ConfigMap", "htcondor-config"),
                        ("kubernetes:core/v1:Secret", "htcondor-pool-password"),
                        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "htcondor-ingress"),
                        ("kubernetes:core/v1:Namespace", "htcondor-namespace")]:
        assert urn_of(dev, type_, name) in deps, name
    # pulumi-kubernetes holds a Service until its endpoints settle (10 s after the central
    # manager's pod is ready): nothing waits for that, the Service is registered first.
    service = urn_of(dev, "kubernetes:core/v1:Service", "htcondor-central-manager")
    assert not [r.name for r in dev.of_type(DEPLOYMENT) if service in r.dependencies]
    order = [r.urn for r in dev.resources]
    assert order.index(service) < min(order.index(r.urn) for r in dev.of_type(DEPLOYMENT))


@pytest.mark.parametrize("role", ["htcondor-schedd", "htcondor-worker"])
def test_schedd_and_workers_come_after_the_central_manager(dev, role):
    (deployment,) = [r for r in dev.of_type(DEPLOYMENT) if r.name == role]
    assert urn_of(dev, DEPLOYMENT, "htcondor-central-manager") in deployment.dependencies
    order = [r.name for r in dev.of_type(DEPLOYMENT)]
    assert order.index("htcondor-central-manager") < order.index(role)


@pytest.mark.parametrize("workers", [0, 1, 3, 250])
def test_worker_replicas_follow_stack_config(workers):
    rendered = render({"workers": str(workers)})
    replicas = {r.inputs["metadata"]["name"]: r.inputs["spec"]["replicas"] for r in rendered.of_type(DEPLOYMENT)}
    assert replicas == {"htcondor-central-manager": 1, "htcondor-schedd": 1, "htcondor-worker": workers,
                        "htcondor-metrics": 1}
    assert rendered.outputs["workers"] == workers


def test_dev_stack_has_one_worker(dev):
    assert dev.outputs["workers"] == 1


def test_outputs_name_the_objects_and_only_the_credentials_are_secret(dev):
    # Each token output is the token in its role's Secret, the one that role's pods mount.
    tokens = {}
    for output, role in (("submit_token", "schedd"), ("worker_token", "worker")):
        (secret,) = [r.inputs for r in dev.of_type("kubernetes:core/v1:Secret")
                     if r.name == shared.credential_secret_name("htcondor", role)]
        (value,) = secret["data"].values()
        tokens[output] = base64.b64decode(value).decode()
    assert dev.outputs == {
        "central_manager_address": "htcondor-central-manager.htcondor.svc.cluster.local:9618",
        "namespace": "htcondor",
        "workers": 1,
        "pool_password": dev.password,
        **tokens,
        "service_name": "htcondor-central-manager",
        "central_manager_deployment_name": "htcondor-central-manager",
        "schedd_deployment_name": "htcondor-schedd",
        "worker_deployment_name": "htcondor-worker",
        "metrics_address": "htcondor-metrics.htcondor.svc.cluster.local:9720",
        "worker_pool_deployment_names": {"default": "htcondor-worker"},
    }
    assert all(token.count(".") == 2 for token in tokens.values())  # JWTs
    assert dev.secret_outputs == {"pool_password", "submit_token", "worker_token"}


def test_two_pools_can_share_a_namespace():
    a = render({"name": "alpha", "namespace": "shared", "createNamespace": "false"})
    b = render({"name": "beta", "namespace": "shared", "createNamespace": "false"})
    names = lambda r: {(x.kind, x.inputs["metadata"]["name"]) for x in r.resources if x.type.startswith("kubernetes:")}  # noqa: E731
    assert names(a) and not names(a) & names(b)
    assert all(x.inputs["metadata"]["namespace"] == "shared" for x in a.resources if x.type.startswith("kubernetes:"))
    assert a.outputs["central_manager_address"] == "alpha-central-manager.shared.svc.cluster.local:9618"


def test_an_existing_namespace_is_used_not_created():
    rendered = render({"namespace": "batch", "createNamespace": "false"})
    assert not rendered.of_type("kubernetes:core/v1:Namespace")
    assert rendered.outputs["namespace"] == "batch"


def test_created_namespace_carries_the_configured_name():
    rendered = render({"namespace": "hpc"})
    (ns,) = rendered.of_type("kubernetes:core/v1:Namespace")
    assert ns.inputs["metadata"]["name"] == "hpc"


def pod_template(rendered, role):
    name = shared.object_name("htcondor", role)
    (d,) = [r for r in rendered.of_type(DEPLOYMENT) if r.inputs["metadata"]["name"] == name]
    return d.inputs["spec"]["template"]


@pytest.mark.parametrize("role", ["centralManager", "schedd", "worker"])
def test_every_object_carries_the_recommended_labels(dev, role):
    labels = pod_template(dev, role)["metadata"]["labels"]
    assert labels == {
        "app.kubernetes.io/name": "htcondor", "app.kubernetes.io/instance": "htcondor",
        "app.kubernetes.io/component": shared.COMPONENTS[role],
        "app.kubernetes.io/part-of": "htcondor-pool", "app.kubernetes.io/managed-by": "pulumi",
    }
    for r in dev.resources:
        if r.type.startswith("kubernetes:"):
            assert r.inputs["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pulumi"


def test_service_selects_exactly_the_central_manager_pods(dev):
    (service,) = [s for s in dev.of_type("kubernetes:core/v1:Service") if s.name == "htcondor-central-manager"]
    selector = service.inputs["spec"]["selector"]
    assert selector.items() <= pod_template(dev, "centralManager")["metadata"]["labels"].items()
    for role in ("schedd", "worker"):
        assert not selector.items() <= pod_template(dev, role)["metadata"]["labels"].items()
    assert service.inputs["spec"]["ports"] == [{"name": "condor", "port": 9618, "targetPort": "condor", "protocol": "TCP"}]


def annotations(rendered, role):
    return pod_template(rendered, role)["metadata"]["annotations"]


def test_a_config_change_rolls_the_pods_and_scaling_does_not():
    before, after = render(password="same-password"), render({"poolName": "Renamed"}, password="same-password")
    for role in ("centralManager", "schedd", "worker"):
        # poolName is shared config: every role's checksum changes.
        assert annotations(before, role)[shared.CHECKSUM_CONFIG] != annotations(after, role)[shared.CHECKSUM_CONFIG]
    scaled = render({"workers": "5"}, password="same-password")
    for role in ("centralManager", "schedd", "worker"):
        # Scaling is not a config change: nothing rolls.
        assert annotations(before, role) == annotations(scaled, role)


def test_a_new_password_rolls_every_pod():
    one, two = render(password="first-password"), render(password="second-password")
    for role in ("centralManager", "schedd", "worker"):
        assert annotations(one, role)[shared.CHECKSUM_CREDENTIAL] != annotations(two, role)[shared.CHECKSUM_CREDENTIAL]
        assert annotations(one, role)[shared.CHECKSUM_CONFIG] == annotations(two, role)[shared.CHECKSUM_CONFIG]


def test_each_pod_mounts_the_shared_config_and_only_its_own_role(dev):
    for role in ("centralManager", "schedd", "worker"):
        volumes = {v["name"]: v for v in pod_template(dev, role)["spec"]["volumes"]}
        keys = [item["key"] for item in volumes["config"]["configMap"]["items"]]
        assert f"50-role-{role}.conf" in keys
        assert not [k for k in keys if k.startswith("50-role-") and k != f"50-role-{role}.conf"]
        credential = {"centralManager": "htcondor-pool-password", "schedd": "htcondor-schedd-token",
                      "worker": "htcondor-worker-token"}[role]
        assert volumes["credential-source"]["secret"] == {"secretName": credential, "defaultMode": 0o400}


def pod_spec(rendered, role):
    (deployment,) = [r for r in rendered.of_type("kubernetes:apps/v1:Deployment")
                     if r.inputs["metadata"]["name"] == f"htcondor-{shared.COMPONENTS[role]}"]
    return deployment.inputs["spec"]["template"]["spec"]


def test_a_leaving_worker_drains_first_within_the_configured_grace_period():
    rendered = render({"workerGracePeriodSeconds": "900"})
    spec = pod_spec(rendered, "worker")
    assert spec["terminationGracePeriodSeconds"] == 900
    (container,) = spec["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command == ["/bin/sh", "/etc/htcondor-pool/prestop-drain.sh"]
    # The script it runs is in the worker's config volume, executable.
    items = {i["key"]: i for v in spec["volumes"] if "configMap" in v for i in v["configMap"]["items"]}
    assert items["prestop-drain.sh"] == {"key": "prestop-drain.sh", "path": "prestop-drain.sh", "mode": 0o555}


@pytest.mark.parametrize("role", ["centralManager", "schedd"])
def test_only_workers_have_a_drain_hook(dev, role):
    (container,) = pod_spec(dev, role)["containers"]
    assert "lifecycle" not in container


def password_keepers(rendered):
    (password,) = rendered.of_type("random:index/randomPassword:RandomPassword")
    return password.inputs["keepers"]


def test_a_new_password_version_draws_a_new_password():
    # Pulumi replaces a RandomPassword whose keepers change: a new password, hence a new
    # Secret and (test_a_new_password_rolls_every_pod) every pod rolled onto it.
    assert password_keepers(render()) == {"passwordVersion": "1"}
    assert password_keepers(render({"passwordVersion": "2"})) == {"passwordVersion": "2"}
