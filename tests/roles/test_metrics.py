"""pool/roles/metrics.py alone: the exporter's token, policy, Deployment and Service, and
the dashboard."""

import base64

import pulumi

from pool import HTCondorPoolArgs
from pool.idtokens import claims
from pool.roles import Metrics, MetricsArgs
from tests.roles import HOST, INSTANCE, NAMESPACE, build, objects, pool_config, urn, waited_for

TYPE = "htcondor:index:Metrics"


def metrics(network_policy=True, service_monitor=False):
    def program():
        made = Metrics(f"{INSTANCE}-metrics", MetricsArgs(
            INSTANCE, NAMESPACE, "htcondor/cm:25.0.15-el9", {}, pool_config(HTCondorPoolArgs(metrics=True)),
            pulumi.Output.secret("test-password"), HOST, network_policy, ("10.42.0.0/16",), service_monitor,
            after=[waited_for("policy")]))
        pulumi.export("address", made.address)
    return program


def test_it_holds_the_exporter_its_token_policy_and_service_and_the_dashboard():
    rendered = build(metrics(service_monitor=True))
    found = objects(rendered, TYPE)
    assert set(found) == {("Secret", "t-metrics-token"), ("NetworkPolicy", "t-metrics-ingress"),
                          ("Deployment", "t-metrics"), ("Service", "t-metrics"), ("ConfigMap", "t-dashboard"),
                          ("ServiceMonitor", "t-metrics-monitor")}
    assert rendered.outputs["address"] == f"t-metrics.{NAMESPACE}.svc.cluster.local:9720"
    deployment = found[("Deployment", "t-metrics")]
    assert {urn(rendered, "ConfigMap", "policy-waited-for"), urn(rendered, "Secret", "t-metrics-token"),
            urn(rendered, "NetworkPolicy", "t-metrics-ingress")} <= set(deployment.dependencies)
    ingress = found[("NetworkPolicy", "t-metrics-ingress")].inputs["spec"]["ingress"]
    assert ingress[0]["from"] == [{"ipBlock": {"cidr": "10.42.0.0/16"}}]


def test_its_token_may_only_read():
    found = objects(build(metrics()), TYPE)
    token = base64.b64decode(found[("Secret", "t-metrics-token")].inputs["data"]["token"]).decode()
    assert claims(token)["scope"] == "condor:/READ" and claims(token)["sub"] == f"metrics@{HOST}"


def test_without_network_policy_it_has_none():
    assert ("NetworkPolicy", "t-metrics-ingress") not in objects(build(metrics(network_policy=False)), TYPE)
