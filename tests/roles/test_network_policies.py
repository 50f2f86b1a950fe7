"""pool/roles/network_policies.py alone: the pool's ingress, egress and worker egress."""

from pool.roles import NetworkPolicies, NetworkPoliciesArgs
from tests.roles import INSTANCE, NAMESPACE, build, objects

TYPE = "htcondor:index:NetworkPolicies"
POOL_PODS = {"app.kubernetes.io/name": "htcondor", "app.kubernetes.io/instance": INSTANCE}


def policies(cidrs=("192.0.2.0/24",), pools=("default", "gpu"), egress=("0.0.0.0/0",)):
    return lambda: NetworkPolicies(f"{INSTANCE}-network-policies", NetworkPoliciesArgs(
        INSTANCE, NAMESPACE, tuple(cidrs), list(pools), tuple(egress)))


def specs(rendered) -> dict:
    return {name: r.inputs["spec"] for (kind, name), r in objects(rendered, TYPE).items()}


def test_it_holds_the_pools_three_policies_over_its_pods():
    found = specs(build(policies()))
    assert set(found) == {"t-ingress", "t-egress", "t-worker-egress"}
    assert all(spec["podSelector"]["matchLabels"] == POOL_PODS for spec in found.values())
    ingress = found["t-ingress"]["ingress"]
    assert ingress == [{"from": [{"podSelector": {"matchLabels": POOL_PODS}}, {"ipBlock": {"cidr": "192.0.2.0/24"}}],
                        "ports": [{"protocol": "TCP", "port": 9618}]}]


def test_jobs_of_every_given_worker_pool_reach_the_egress_networks_less_the_private_ones():
    spec = specs(build(policies()))["t-worker-egress"]
    assert spec["podSelector"]["matchExpressions"] == [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["worker", "worker-gpu"]}]
    (rule,) = spec["egress"]
    (block,) = rule["to"]
    assert block["ipBlock"]["cidr"] == "0.0.0.0/0" and "10.0.0.0/8" in block["ipBlock"]["except"]
    assert specs(build(policies(egress=())))["t-worker-egress"]["egress"] == []
