"""The NetworkPolicy: on by default, it lets only this pool's pods and the configured CIDRs
reach HTCondor's port on the pool's pods."""

from pool.condor_config import CONDOR_PORT
from tests.render import render
from tests.test_component import DEPLOYMENT, urn_of

POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def the_policy(rendered):
    (policy,) = rendered.of_type(POLICY)
    return policy.inputs


def selects(selector: dict, labels: dict) -> bool:
    return selector["matchLabels"].items() <= labels.items()


def test_on_by_default_and_covering_every_pod_of_the_pool(dev):
    spec = the_policy(dev)["spec"]
    assert spec["policyTypes"] == ["Ingress"]  # egress stays open: jobs may need the world
    templates = [d.inputs["spec"]["template"]["metadata"]["labels"] for d in dev.of_type(DEPLOYMENT)]
    assert len(templates) == 3 and all(selects(spec["podSelector"], labels) for labels in templates)


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


def test_two_pools_in_one_namespace_do_not_open_to_each_other():
    a = render({"name": "alpha", "namespace": "shared", "createNamespace": "false"})
    b = render({"name": "beta", "namespace": "shared", "createNamespace": "false"})
    b_labels = [d.inputs["spec"]["template"]["metadata"]["labels"] for d in b.of_type(DEPLOYMENT)]
    (rule,) = the_policy(a)["spec"]["ingress"]
    assert not any(selects(rule["from"][0]["podSelector"], labels) for labels in b_labels)
    assert not any(selects(the_policy(a)["spec"]["podSelector"], labels) for labels in b_labels)
    assert the_policy(a)["metadata"]["name"] != the_policy(b)["metadata"]["name"]


def test_it_exists_before_any_pod(dev):
    (cm,) = [d for d in dev.of_type(DEPLOYMENT) if d.name == "htcondor-central-manager"]
    assert urn_of(dev, POLICY, "htcondor-ingress") in cm.dependencies
