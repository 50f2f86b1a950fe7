"""Metrics (stack config `metrics`): the pool's state for Prometheus. The exporter
(pool/files/metrics_exporter.py, shipped in the ConfigMap) runs in a Deployment
NAME-metrics of the central manager's image, as condor with no capability, with its own
IDTOKEN of READ scope only (the Secret NAME-metrics-token); it serves /metrics through the
Service NAME-metrics (pool/roles/scraping.py), which only `metricsAllowedCidrs` reach
(NetworkPolicy NAME-metrics-ingress). The Grafana dashboard ships in the ConfigMap
NAME-dashboard; with `metricsServiceMonitor`, a ServiceMonitor too."""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .. import idtokens
from ..condor_config import METRICS_SNIPPET, SHARED_SNIPPETS, TOKEN_FILE_NAME, metrics_config
from ..credentials import METRICS_TOKEN_HOLDER
from ..defaults import METRICS_PORT, METRICS_RESOURCES
from . import scraping
from .pods import POD_TOKEN, PROMETHEUS_TEXT, client_deployment, client_files, client_pod
from .shared import (
    CHECKSUM_CONFIG, CHECKSUM_CREDENTIAL, PoolConfig, Role, base64_text, client_labels, labels, package_file,
    pod_script, sha256,
)

METRICS_COMPONENT = "metrics"
EXPORTER = "metrics_exporter.py"
# The Grafana dashboard, in the ConfigMap NAME-dashboard under this key; Grafana's dashboard
# sidecar loads every ConfigMap with this label.
DASHBOARD_KEY = "htcondor-pool.json"
GRAFANA_DASHBOARD_LABEL = "grafana_dashboard"


def dashboard() -> str:
    """The Grafana dashboard of the pool's metrics (pool/grafana)."""
    return package_file(f"grafana/{DASHBOARD_KEY}")


def metrics_name(instance: str) -> str:
    """The exporter's Deployment, Service, NetworkPolicy and ServiceMonitor."""
    return f"{instance}-metrics"


def metrics_config_keys() -> list[str]:
    """The ConfigMap keys the exporter's pod mounts: HTCondor's client configuration (where
    the collector is, the pool's security) and the exporter itself."""
    return ["condor_config", *SHARED_SNIPPETS, METRICS_SNIPPET, EXPORTER, POD_TOKEN, PROMETHEUS_TEXT]


def config_files() -> dict[str, str]:
    """What the exporter adds to the pool's ConfigMap: its configuration and its program."""
    return {METRICS_SNIPPET: metrics_config(), EXPORTER: pod_script(EXPORTER), **client_files()}


def metrics_pod_spec(image: str, placement: dict, config_map_name="config", credential_secret="credential") -> dict:
    """The exporter's pod, answering only on its metrics port. Its probes ask the HTTP
    server, not the collector: an exporter whose collector is away must stay up to say so."""
    pod = client_pod(METRICS_COMPONENT, EXPORTER, image, placement, config_map_name, credential_secret,
                     metrics_config_keys(), METRICS_RESOURCES,
                     [{"name": "HTCONDOR_POOL_METRICS_PORT", "value": str(METRICS_PORT)}])
    probe = {"httpGet": {"path": "/healthz", "port": "metrics"}, "timeoutSeconds": 5}
    pod["containers"][0].update({
        "ports": [dict(scraping.CONTAINER_PORT)],
        "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**probe, "periodSeconds": 30, "failureThreshold": 4, "initialDelaySeconds": 10},
    })
    return pod


def metrics_deployment(instance: str, namespace_name, pod: dict, checksums: dict) -> dict:
    return client_deployment(instance, namespace_name, METRICS_COMPONENT, pod, checksums)


def dashboard_config_map(instance: str, namespace_name, dashboard_json: str) -> dict:
    return {
        "metadata": {"name": f"{instance}-dashboard", "namespace": namespace_name,
                     "labels": {**labels(instance), GRAFANA_DASHBOARD_LABEL: "1"}},
        "data": {DASHBOARD_KEY: dashboard_json},
    }


def metrics_token_secret(instance: str, namespace_name, token_b64) -> dict:
    """The exporter's IDTOKEN (READ scope only), as the one file of its token directory."""
    return {
        "metadata": {"name": f"{metrics_name(instance)}-token", "namespace": namespace_name,
                     "labels": client_labels(instance, METRICS_COMPONENT)},
        "type": "Opaque",
        "data": {TOKEN_FILE_NAME: token_b64},
    }


@dataclass(frozen=True)
class MetricsArgs:
    instance: str  # the pool's name: objects are NAME-metrics, NAME-metrics-token, NAME-dashboard
    namespace: pulumi.Input[str]
    # The central manager's image and placement: the exporter is the pool's infrastructure.
    image: str
    placement: dict
    config: PoolConfig  # the ConfigMap, with config_files() in it
    # The pool's signing key and TRUST_DOMAIN, to mint the exporter's own token from.
    signing_key: pulumi.Output[str]
    trust_domain: str
    # True: the NetworkPolicy NAME-metrics-ingress admits the metrics port from these only.
    network_policy: bool
    allowed_cidrs: tuple[str, ...]
    service_monitor: bool  # also a ServiceMonitor (the Prometheus Operator's CRD)
    # What its pod waits for besides its config and token: the pool's NetworkPolicies.
    after: list[pulumi.Resource]


class Metrics(Role):
    """The exporter's token, policy, Deployment and Service, and the dashboard."""

    address: pulumi.Output[str]  # NAME-metrics.NAMESPACE.svc.cluster.local:9720

    def __init__(self, name: str, args: MetricsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("Metrics", name, opts)
        instance, namespace, trust_domain = args.instance, args.namespace, args.trust_domain
        # Its own token, READ scope only: it reads the collector and can do nothing else.
        token = pulumi.Output.secret(args.signing_key.apply(
            lambda key: idtokens.mint(key, trust_domain, METRICS_TOKEN_HOLDER.subject(trust_domain),
                                      METRICS_TOKEN_HOLDER.scopes)))
        secret = k8s.core.v1.Secret(f"{instance}-metrics-token", opts=self.object_options(),
                                    **metrics_token_secret(instance, namespace, base64_text(token)))
        policy = [k8s.networking.v1.NetworkPolicy(
            f"{instance}-metrics-ingress", opts=self.object_options(),
            **scraping.network_policy(instance, namespace, args.allowed_cidrs, METRICS_COMPONENT))] \
            if args.network_policy else []
        k8s.apps.v1.Deployment(
            f"{instance}-metrics", opts=self.object_options(depends_on=[
                args.config.config_map, secret, *args.after, *policy]),
            **metrics_deployment(
                instance, namespace, metrics_pod_spec(args.image, args.placement, args.config.config_map.metadata.name,
                                                      secret.metadata.name),
                {CHECKSUM_CONFIG: args.config.checksum(metrics_config_keys()),
                 CHECKSUM_CREDENTIAL: pulumi.Output.unsecret(token.apply(sha256))}))
        service = k8s.core.v1.Service(f"{instance}-metrics", opts=self.object_options(),
                                      **scraping.service(instance, namespace, METRICS_COMPONENT))
        k8s.core.v1.ConfigMap(f"{instance}-dashboard", opts=self.object_options(),
                              **dashboard_config_map(instance, namespace, dashboard()))
        if args.service_monitor:
            scraping.register_service_monitor(instance, namespace, METRICS_COMPONENT, service, self)
        self.address = scraping.address(service, namespace)
        self.register_outputs({"address": self.address})
