"""The metrics exporter as the program renders it (Pulumi mocks): on by default, its own
READ-only token, a Service Prometheus finds by its annotations, a policy that admits the
metrics port only from `metricsAllowedCidrs`, an optional ServiceMonitor, and the Grafana
dashboard, whose every query names a metric the exporter serves."""

import base64
import json
import re

import pytest

from pool.errors import PoolConfigError
from pool.idtokens import claims
from tests.condor_config_parser import expand, parse
from tests.render import REPO, render
from tests.test_autoscaler import autoscaler
from tests.test_metrics_exporter import exporter

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SECRET = "kubernetes:core/v1:Secret"
MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
DASHBOARD = REPO / "pool" / "grafana" / "htcondor-pool.json"


def named(rendered, type_: str, name: str) -> dict:
    (found,) = [r.inputs for r in rendered.of_type(type_) if r.inputs["metadata"]["name"] == name]
    return found


def metrics_objects(rendered) -> list[str]:
    return sorted(f"{r.inputs['kind']}/{r.inputs['metadata']['name']}" for r in rendered.resources
                  if r.type.startswith("kubernetes:") and "metrics" in r.inputs["metadata"]["name"]
                  or r.type.startswith("kubernetes:") and r.inputs["metadata"]["name"].endswith("-dashboard"))


def test_on_by_default_with_its_service_token_policy_and_dashboard(dev):
    assert metrics_objects(dev) == ["ConfigMap/htcondor-dashboard", "Deployment/htcondor-metrics",
                                    "NetworkPolicy/htcondor-metrics-ingress", "Secret/htcondor-metrics-token",
                                    "Service/htcondor-metrics"]
    assert dev.outputs["metrics_address"] == "htcondor-metrics.htcondor.svc.cluster.local:9720"


def test_prometheus_finds_the_exporter_by_the_services_annotations(dev):
    service = named(dev, SERVICE, "htcondor-metrics")
    assert service["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "9720", "prometheus.io/path": "/metrics"}
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9720, "targetPort": "metrics", "protocol": "TCP"}]
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in
            (r.inputs for r in dev.of_type(DEPLOYMENT))}
    selected = [name for name, labels in pods.items() if service["spec"]["selector"].items() <= labels.items()]
    assert selected == ["htcondor-metrics"]
    (container,) = named(dev, DEPLOYMENT, "htcondor-metrics")["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9720, "protocol": "TCP"}]
    assert container["command"] == ["python3", "/etc/htcondor-pool/metrics_exporter.py"]
    # The pool's own image: nothing new to build or pull.
    assert container["image"] == named(dev, DEPLOYMENT, "htcondor-central-manager")["spec"]["template"]["spec"][
        "containers"][0]["image"]


def test_the_exporter_reads_the_collector_through_the_service_with_its_token_only(dev):
    config_map = named(dev, CONFIG_MAP, "htcondor-config")
    pod = named(dev, DEPLOYMENT, "htcondor-metrics")["spec"]["template"]["spec"]
    (config_volume,) = [v for v in pod["volumes"] if "configMap" in v]
    keys = [item["key"] for item in config_volume["configMap"]["items"]]
    assert keys[0] == "condor_config" and "metrics_exporter.py" in keys
    snippets = sorted(k for k in keys if k.endswith(".conf"))
    config = parse(config_map["data"]["condor_config"], *(config_map["data"][k] for k in snippets))
    assert expand(config, "COLLECTOR_HOST") == "htcondor-central-manager.htcondor.svc.cluster.local:9618"
    assert config["SEC_CLIENT_AUTHENTICATION_METHODS"] == "IDTOKENS"
    assert config["SEC_TOKEN_DIRECTORY"] == "/run/htcondor-pool-credential"
    assert "DAEMON_LIST" not in config and "SEC_PASSWORD_FILE" not in config
    assert config_map["data"]["metrics_exporter.py"] == (REPO / "pool/files/metrics_exporter.py").read_text()
    (secret_volume,) = [v for v in pod["volumes"] if "secret" in v]
    secret = named(dev, SECRET, secret_volume["secret"]["secretName"])
    (token,) = secret["data"].values()
    assert claims(base64.b64decode(token).decode())["scope"] == "condor:/READ"
    assert claims(base64.b64decode(token).decode())["sub"] == "metrics@htcondor-central-manager.htcondor.svc.cluster.local"


def test_only_the_allowed_networks_reach_the_metrics_port_and_9618_stays_as_it_is(dev):
    policy = named(dev, POLICY, "htcondor-metrics-ingress")["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "metrics"
    assert policy["ingress"] == [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}],
                                  "ports": [{"protocol": "TCP", "port": 9720}]}]
    narrowed = render({"metricsAllowedCidrs": '["10.42.7.0/24"]'})
    assert named(narrowed, POLICY, "htcondor-metrics-ingress")["spec"]["ingress"][0]["from"] == [
        {"ipBlock": {"cidr": "10.42.7.0/24"}}]
    assert named(narrowed, POLICY, "htcondor-ingress") == named(dev, POLICY, "htcondor-ingress")


def test_metrics_false_leaves_out_every_part_of_it():
    rendered = render({"metrics": "false"})
    assert metrics_objects(rendered) == []
    assert rendered.outputs["metrics_address"] is None
    assert "metrics_exporter.py" not in named(rendered, CONFIG_MAP, "htcondor-config")["data"]


def test_a_service_monitor_only_when_asked(dev):
    assert not [r for r in dev.resources if r.inputs.get("kind") == "ServiceMonitor"]
    rendered = render({"metricsServiceMonitor": "true"})
    (monitor,) = [r.inputs for r in rendered.resources if r.inputs.get("kind") == "ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = named(rendered, SERVICE, "htcondor-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]


@pytest.mark.parametrize("config,message", [
    ({"metrics": "false", "metricsServiceMonitor": "true"},
     r"^htcondor-pool:metricsServiceMonitor: True is not allowed; expected false while htcondor-pool:metrics is false"),
    ({"networkPolicy": "false", "metricsAllowedCidrs": '["10.0.0.0/8"]'},
     r"^htcondor-pool:metricsAllowedCidrs: \['10.0.0.0/8'\] is not allowed; expected the default while "
     r"htcondor-pool:metrics or htcondor-pool:networkPolicy is false"),
    ({"metricsAllowedCidrs": '["10.0.0.1/8"]'}, r"^htcondor-pool:metricsAllowedCidrs\[0\]: '10.0.0.1/8'"),
    ({"metrics": "maybe"}, r"^htcondor-pool:metrics: 'maybe' is not allowed; expected true or false"),
])
def test_bad_metrics_config_is_refused_naming_the_key(config, message):
    with pytest.raises(PoolConfigError, match=message):
        render(config)


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_metric_a_dashboard_panel_queries_is_one_the_exporter_or_the_autoscaler_serves():
    served = {m.name for m in exporter.METRICS} | {m.name for m in autoscaler.METRICS}
    queried = {name for expr in dashboard_queries() for name in re.findall(r"\bhtcondor_[a-z_]+\b", expr)}
    assert queried and queried <= served, queried - served
    # The panels the README promises.
    titles = [panel["title"] for panel in json.loads(DASHBOARD.read_text())["panels"]]
    for wanted in ("Slots by state and pool", "CPUs by state and pool", "Jobs by status", "Demand by submitter",
                   "Negotiation cycle time", "Time since the last negotiation cycle", "Daemons up",
                   "Burst workers by pool"):
        assert wanted in titles


def test_the_dashboard_ships_in_a_config_map_for_grafanas_sidecar(dev):
    config_map = named(dev, CONFIG_MAP, "htcondor-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["data"] == {"htcondor-pool.json": DASHBOARD.read_text()}


def test_readme_lists_every_metric_the_exporter_serves_as_declared():
    readme = (REPO / "README.md").read_text()
    table = readme.split("<!-- metrics-table -->\n", 1)[1].split("<!-- /metrics-table -->", 1)[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    assert [(name.strip("`"), kind, labels) for name, kind, labels, _ in rows] == [
        (m.name, m.type, ", ".join(f"`{label}`" for label in m.labels) or "-") for m in exporter.METRICS]
