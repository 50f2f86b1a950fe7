"""The pool as a tree of components (issue 30): the top `htcondor:index:Pool` keeps its URN,
each role is a child component with a stable type and name that holds that role's objects
(what `pulumi stack` shows grouped), and every object that moved from the pool into a
role's component names the pool as its former parent, so that in a stack created before,
Pulumi finds it under the URN it had (tests/test_kube_upgrade.py does so on the real
cluster).

URNs here are computed as the Pulumi engine computes them (a child's type qualified by its
parent's, the root stack left out), not as the mocks do."""

import pytest

from tests import golden
from tests.render import render

POOL = "htcondor:index:Pool"
STACK, PROJECT = "dev", "htcondor-pool"


def by_urn(rendered) -> dict:
    return {r.urn: r for r in rendered.resources}


def engine_urn(resource, resources: dict) -> str:
    """The resource's URN as the engine makes it: under the root stack, its type; under a
    parent, the parent's qualified type, `$`, its type."""
    parent = resources.get(resource.parent)
    if parent is None:  # the root stack's child
        return f"urn:pulumi:{STACK}::{PROJECT}::{resource.type}::{resource.name}"
    return child_urn(engine_urn(parent, resources), resource.type, resource.name)


def child_urn(parent_urn: str, type_: str, name: str) -> str:
    return f"{parent_urn.rpartition('::')[0]}${type_}::{name}"


def alias_urns(resource, resources: dict) -> set[str]:
    """The URNs the resource's aliases name, resolved as the engine resolves an alias spec:
    what it leaves out is the resource's own (name, type, stack, project, parent)."""
    urns = set()
    for alias in resource.aliases:
        spec = alias["spec"]
        assert spec.get("stack", STACK) == STACK and spec.get("project", PROJECT) == PROJECT, spec
        parent = resources[spec.get("parentUrn") or resource.parent]
        urns.add(child_urn(engine_urn(parent, resources), spec.get("type") or resource.type,
                           spec.get("name") or resource.name))
    return urns


@pytest.fixture(scope="module", params=list(golden.CONFIGS))
def rendered(request):
    stack, config = golden.CONFIGS[request.param]
    return render(config, stack=stack)


def test_the_pool_keeps_its_urn(rendered):
    (pool,) = rendered.of_type(POOL)
    assert engine_urn(pool, by_urn(rendered)) == f"urn:pulumi:{STACK}::{PROJECT}::{POOL}::htcondor"


def test_every_object_that_moved_names_the_pool_as_its_former_parent(rendered):
    """An object that was the pool's child (every one before issue 30) and is now a role
    component's has an alias resolving to the URN it had: same type and name, the pool as
    its parent. No two objects claim one former URN, and none claims another's URN."""
    resources = by_urn(rendered)
    (pool,) = rendered.of_type(POOL)
    pool_urn = engine_urn(pool, resources)
    now = {engine_urn(r, resources) for r in rendered.resources}
    claimed: dict[str, str] = {}
    moved = [r for r in rendered.resources if not r.type.startswith("htcondor:index:") and r.parent != pool.urn]
    assert moved
    for r in moved:
        before = child_urn(pool_urn, r.type, r.name)
        assert before in alias_urns(r, resources), (r.type, r.name, r.aliases)
        assert before not in now and before not in claimed, before
        claimed[before] = r.name
    # The pool's own objects did not move, and need no alias of theirs.
    for r in rendered.resources:
        if r.parent == pool.urn and not r.type.startswith("htcondor:index:"):
            assert child_urn(pool_urn, r.type, r.name) == engine_urn(r, resources)


# What `pulumi stack` shows of a bursting pool with metrics (golden config
# "bursting-metrics"): each role's component under the pool, its objects under it.
BURSTING_TREE = {
    ("htcondor:index:Pool", "htcondor"): {
        ("kubernetes:core/v1:Namespace", "htcondor-namespace"),
        ("kubernetes:core/v1:ConfigMap", "htcondor-config"),
    },
    ("htcondor:index:Credentials", "htcondor-credentials"): {
        ("random:index/randomPassword:RandomPassword", "htcondor-pool-password"),
        ("kubernetes:core/v1:Secret", "htcondor-pool-password"),
        ("kubernetes:core/v1:Secret", "htcondor-schedd-token"),
        ("kubernetes:core/v1:Secret", "htcondor-worker-token"),
    },
    ("htcondor:index:NetworkPolicies", "htcondor-network-policies"): {
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "htcondor-ingress"),
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "htcondor-egress"),
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "htcondor-worker-egress"),
    },
    ("htcondor:index:CentralManager", "htcondor-central-manager"): {
        ("kubernetes:core/v1:Service", "htcondor-central-manager"),
        ("kubernetes:core/v1:PersistentVolumeClaim", "htcondor-central-manager-spool"),
        ("kubernetes:apps/v1:Deployment", "htcondor-central-manager"),
    },
    ("htcondor:index:Schedd", "htcondor-schedd"): {
        ("kubernetes:core/v1:PersistentVolumeClaim", "htcondor-schedd-spool"),
        ("kubernetes:apps/v1:Deployment", "htcondor-schedd"),
    },
    ("htcondor:index:WorkerPool", "htcondor-worker"): {("kubernetes:apps/v1:Deployment", "htcondor-worker")},
    ("htcondor:index:WorkerPool", "htcondor-worker-gpu"): {("kubernetes:apps/v1:Deployment", "htcondor-worker-gpu")},
    ("htcondor:index:Metrics", "htcondor-metrics"): {
        ("kubernetes:core/v1:Secret", "htcondor-metrics-token"),
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "htcondor-metrics-ingress"),
        ("kubernetes:apps/v1:Deployment", "htcondor-metrics"),
        ("kubernetes:core/v1:Service", "htcondor-metrics"),
        ("kubernetes:core/v1:ConfigMap", "htcondor-dashboard"),
        ("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "htcondor-metrics-monitor"),
    },
    ("htcondor:index:Autoscaler", "htcondor-autoscaler"): {
        ("kubernetes:core/v1:Secret", "htcondor-autoscaler-token"),
        ("kubernetes:core/v1:ServiceAccount", "htcondor-autoscaler"),
        ("kubernetes:rbac.authorization.k8s.io/v1:Role", "htcondor-autoscaler"),
        ("kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy", "htcondor-autoscaler"),
        ("kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding", "htcondor-autoscaler"),
        ("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "htcondor-autoscaler"),
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "htcondor-autoscaler-egress"),
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "htcondor-autoscaler-ingress"),
        ("kubernetes:core/v1:Service", "htcondor-autoscaler"),
        ("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "htcondor-autoscaler-monitor"),
        ("kubernetes:apps/v1:Deployment", "htcondor-autoscaler"),
    },
}


def tree(rendered) -> dict:
    """(type, name) of each component -> (type, name) of the objects right under it."""
    resources = by_urn(rendered)
    components = {r.urn: (r.type, r.name) for r in rendered.resources if r.type.startswith("htcondor:index:")}
    children: dict = {key: set() for key in components.values()}
    for r in rendered.resources:
        if not r.type.startswith("htcondor:index:"):
            children[components[r.parent]].add((r.type, r.name))
        elif r.type != POOL:
            assert resources[r.parent].type == POOL, (r.type, r.name)  # every role is the pool's child
    return children


def test_each_roles_objects_are_grouped_under_its_component():
    stack, config = golden.CONFIGS["bursting-metrics"]
    assert tree(render(config, stack=stack)) == BURSTING_TREE


def test_a_pool_without_bursting_metrics_or_policy_has_no_such_component():
    stack, config = golden.CONFIGS["no-policy-existing-namespace"]
    components = {key for key in tree(render({**config, "metrics": "false"}, stack=stack))}
    assert components == {(POOL, "htcondor"), ("htcondor:index:Credentials", "htcondor-credentials"),
                          ("htcondor:index:CentralManager", "htcondor-central-manager"),
                          ("htcondor:index:Schedd", "htcondor-schedd"),
                          ("htcondor:index:WorkerPool", "htcondor-worker")}


def test_component_names_derive_from_the_pools_name():
    rendered = render({"name": "batch", "workerPools": '{"gpu": {"gpus": 1}}'})
    names = {r.name for r in rendered.resources if r.type.startswith("htcondor:index:")}
    assert names == {"batch", "batch-credentials", "batch-network-policies", "batch-central-manager",
                     "batch-schedd", "batch-worker", "batch-worker-gpu", "batch-metrics"}
