"""What Prometheus scrapes of the pool, as the exporter (Metrics) and the autoscaler (its
decisions) serve it: the container port, a Service annotated the way Prometheus finds
endpoints, a NetworkPolicy that lets the scraper in, and a ServiceMonitor for the
Prometheus Operator. Each is named NAME-COMPONENT after the program it is for."""

import pulumi
import pulumi_kubernetes as k8s

from ..defaults import METRICS_PORT
from .shared import Role, client_labels, client_selector, labels

CONTAINER_PORT = {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}


def _scraped(instance: str, component: str) -> tuple[str, dict, dict]:
    """Name, labels and selector of a component Prometheus scrapes: the exporter, or the
    autoscaler (its decisions)."""
    return f"{instance}-{component}", client_labels(instance, component), client_selector(instance, component)


def service(instance: str, namespace_name, component: str) -> dict:
    """Where Prometheus finds the exporter (or the autoscaler): the annotations Prometheus'
    own example Kubernetes configuration (and most charts') keep endpoints by."""
    name, own_labels, selector = _scraped(instance, component)
    return {
        "metadata": {"name": name, "namespace": namespace_name, "labels": own_labels,
                     "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT),
                                     "prometheus.io/path": "/metrics"}},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}],
        },
    }


def network_policy(instance: str, namespace_name, allowed_cidrs: tuple[str, ...], component: str) -> dict:
    """Ingress to the exporter's (or the autoscaler's) metrics port, from the networks stack
    config allows (Prometheus). HTCondor's port stays as NAME-ingress has it."""
    name, _, selector = _scraped(instance, component)
    return {
        "metadata": {"name": f"{name}-ingress", "namespace": namespace_name, "labels": labels(instance)},
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"ipBlock": {"cidr": cidr}} for cidr in allowed_cidrs],
                         "ports": [{"protocol": "TCP", "port": METRICS_PORT}]}] if allowed_cidrs else [],
        },
    }


def service_monitor(instance: str, namespace_name, component: str) -> dict:
    """The Prometheus Operator's way to the same endpoint (monitoring.coreos.com/v1)."""
    name, own_labels, selector = _scraped(instance, component)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": namespace_name, "labels": own_labels},
        "spec": {
            "selector": {"matchLabels": selector},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s"}],
        },
    }


def register_service_monitor(instance: str, namespace_name, component: str, scraped_service: k8s.core.v1.Service,
                             parent: Role) -> k8s.apiextensions.CustomResource:
    """The ServiceMonitor for a scraped component's Service, a child of its component."""
    monitor = service_monitor(instance, namespace_name, component)
    return k8s.apiextensions.CustomResource(
        f"{instance}-{component}-monitor", opts=parent.object_options(depends_on=[scraped_service]),
        api_version=monitor["apiVersion"], kind=monitor["kind"], metadata=monitor["metadata"], spec=monitor["spec"])


def address(scraped_service: k8s.core.v1.Service, namespace_name) -> pulumi.Output[str]:
    """Where the Service serves /metrics, inside the cluster."""
    return pulumi.Output.concat(scraped_service.metadata.name, ".", namespace_name,
                                f".svc.cluster.local:{METRICS_PORT}")
