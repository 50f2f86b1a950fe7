"""The NetworkPolicies, on by default: only this pool's pods and the configured CIDRs reach
HTCondor's port on the pool's pods; the pool's pods reach out only to HTCondor's port and
DNS; jobs on workers also to `workerEgressCidrs`, never link-local (instance metadata) and,
within a broader network, never the private ranges."""

import pytest

from pool.condor_config import CONDOR_PORT
from pool.errors import PoolConfigError
from tests.render import render
from tests.test_component import DEPLOYMENT, urn_of

POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def the_policy(rendered, name: str = "htcondor-ingress"):
    (policy,) = [p for p in rendered.of_type(POLICY) if p.name == name]
    return policy.inputs


def selects(selector: dict, labels: dict) -> bool:
    from tests.podsim.cluster import _selects  # Kubernetes' rules, as the emulator applies them
    return _selects(selector, labels)


def test_on_by_default_and_covering_every_pod_of_the_pool(dev):
    spec = the_policy(dev)["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    templates = [d.inputs["spec"]["template"]["metadata"]["labels"] for d in dev.of_type(DEPLOYMENT)]
    assert len(templates) == 4 and all(selects(spec["podSelector"], labels) for labels in templates)


def test_only_the_pools_pods_reach_htcondors_port(dev):
    (rule,) = the_policy(dev)["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": CONDOR_PORT}]
    (source,) = rule["from"]
    templates = [d.inputs["spec"]["template"]["metadata"]["labels"] for d in dev.of_type(DEPLOYMENT)]
    assert set(source) == {"podSelector"}  # this namespace's pods, no ipBlock
    assert all(selects(source["podSelector"], labels) for labels in templates)


def test_allowed_cidrs_open_the_port_to_outside_hosts():
    rendered = render({"allowedCidrs": '["192.0.2.0/24", "2001:db8::/64"]'})
    (rule,) = the_policy(rendered)["spec"]["ingress"]
    assert rule["from"][1:] == [{"ipBlock": {"cidr": "192.0.2.0/24"}}, {"ipBlock": {"cidr": "2001:db8::/64"}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": CONDOR_PORT}]


def test_it_can_be_switched_off():
    assert not render({"networkPolicy": "false"}).of_type(POLICY)
    with pytest.raises(PoolConfigError, match=r"^htcondor-pool:workerEgressCidrs: \['192.0.2.0/24'\] is not allowed; "
                                              r"expected the default while htcondor-pool:networkPolicy is false"):
        render({"networkPolicy": "false", "workerEgressCidrs": '["192.0.2.0/24"]'})


def test_two_pools_in_one_namespace_do_not_open_to_each_other():
    a = render({"name": "alpha", "namespace": "shared", "createNamespace": "false"})
    b = render({"name": "beta", "namespace": "shared", "createNamespace": "false"})
    b_labels = list(pod_labels(b).values())
    peers = the_policy(a, "alpha-ingress")["spec"]["ingress"][0]["from"]
    assert not any(selects(peers[0]["podSelector"], labels) for labels in b_labels)
    for name in ("alpha-ingress", "alpha-egress", "alpha-worker-egress", "alpha-metrics-ingress"):
        spec = the_policy(a, name)["spec"]
        assert not any(selects(spec["podSelector"], labels) for labels in b_labels), name
    names = {p.name for p in a.of_type(POLICY)}
    assert names == {"alpha-ingress", "alpha-egress", "alpha-worker-egress", "alpha-metrics-ingress"}
    assert not names & {p.name for p in b.of_type(POLICY)}


def test_they_exist_before_any_pod(dev):
    (cm,) = [d for d in dev.of_type(DEPLOYMENT) if d.name == "htcondor-central-manager"]
    for name in ("htcondor-ingress", "htcondor-egress", "htcondor-worker-egress"):
        assert urn_of(dev, POLICY, name) in cm.dependencies, name


def pod_labels(rendered) -> dict[str, dict]:
    return {d.name: d.inputs["spec"]["template"]["metadata"]["labels"] for d in rendered.of_type(DEPLOYMENT)}


def test_every_pool_pod_reaches_out_only_to_htcondors_port_and_dns():
    """HTCondor's port to any address: the central manager's Service is not a pod, and a
    policy that let only the pool's pods through would drop the daemons' connects to it
    while it has no endpoint, instead of kube-proxy refusing them (test_no_job_lost's
    central-manager outage shows what that costs)."""
    rendered = render({"allowedCidrs": '["192.0.2.0/24"]'})
    spec = the_policy(rendered, "htcondor-egress")["spec"]
    assert spec["policyTypes"] == ["Egress"]
    assert all(selects(spec["podSelector"], labels) for labels in pod_labels(rendered).values())
    condor, dns = spec["egress"]
    assert condor == {"ports": [{"protocol": "TCP", "port": CONDOR_PORT}]}
    assert dns == {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}


def test_jobs_on_every_workers_pool_reach_the_internet_but_not_link_local_or_private_ranges():
    rendered = render({"workerPools": '{"gpu": {"gpus": 1}}'})
    spec = the_policy(rendered, "htcondor-worker-egress")["spec"]
    labels = pod_labels(rendered)
    assert {name for name, l in labels.items() if selects(spec["podSelector"], l)} == {
        "htcondor-worker", "htcondor-worker-gpu"}
    (rule,) = spec["egress"]
    assert "ports" not in rule  # any port
    assert rule["to"] == [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12",
                                                       "192.168.0.0/16", "100.64.0.0/10"]}},
        {"ipBlock": {"cidr": "::/0", "except": ["fe80::/10", "fc00::/7"]}}]


def test_a_private_network_listed_on_its_own_is_reachable_as_listed_and_none_means_only_the_pool():
    rendered = render({"workerEgressCidrs": '["10.20.0.0/16", "198.51.100.0/24"]'})
    (rule,) = the_policy(rendered, "htcondor-worker-egress")["spec"]["egress"]
    assert rule["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}, {"ipBlock": {"cidr": "198.51.100.0/24"}}]
    assert the_policy(render({"workerEgressCidrs": "[]"}), "htcondor-worker-egress")["spec"]["egress"] == []


@pytest.mark.parametrize("cidr", ["169.254.169.254/32", "169.254.0.0/16", "fe80::/64"])
def test_link_local_is_never_allowed(cidr):
    with pytest.raises(PoolConfigError, match=rf"^htcondor-pool:workerEgressCidrs\[0\]: '{cidr}' is not allowed; "
                                              r"expected a network outside the link-local ranges"):
        render({"workerEgressCidrs": f'["{cidr}"]'})
