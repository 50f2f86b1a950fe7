"""What the single-node cluster has beyond bare Kubernetes, as a cloud's cluster would:
cluster DNS (CoreDNS, run as a process on the node, behind the usual `kube-dns` Service),
and a default StorageClass (`WaitForFirstConsumer`) whose claims bind to local volumes on
the node, `ReadWriteOncePod` included. Pure functions returning manifests."""

from pathlib import Path

from .topology import CLUSTER_DNS_IP, NODE_IP, NODE_NAME

STORAGE_CLASS = "local"
VOLUME_SIZE = "20Gi"
# Local volumes made ready per access mode; a released one is wiped and made anew (see
# node.VolumeRecycler), so the pool never runs dry across `up`/`destroy` cycles.
VOLUMES_PER_ACCESS_MODE = {"ReadWriteOncePod": 6, "ReadWriteOnce": 2}
COREDNS_USER = "system:coredns"
KUBE_ROUTER_USER = "system:kube-router"
PROMETHEUS_USER = "prometheus"


def storage_class() -> dict:
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS,
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        # Volumes are made ahead (a static provisioner); a claim binds when its pod is
        # scheduled, as with most clouds' default classes.
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Delete",
    }


def volume_names() -> list[tuple[str, str]]:
    """(PersistentVolume name, access mode) of every local volume."""
    short = {"ReadWriteOncePod": "rwop", "ReadWriteOnce": "rwo"}
    return [(f"local-{short[mode]}-{index}", mode)
            for mode, count in VOLUMES_PER_ACCESS_MODE.items() for index in range(count)]


def volume(name: str, access_mode: str, directory: Path) -> dict:
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"htcondor-pool.test/local-volume": "true"}},
        "spec": {
            "capacity": {"storage": VOLUME_SIZE},
            "accessModes": [access_mode],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": STORAGE_CLASS,
            "local": {"path": str(directory)},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE_NAME]}]}]}},
        },
    }


def cluster_dns() -> list[dict]:
    """The `kube-dns` Service every pod's resolv.conf names, its endpoint (CoreDNS on the
    node) and what CoreDNS may read."""
    return [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": "kube-system",
                      "labels": {"k8s-app": "kube-dns"}},
         "spec": {"clusterIP": CLUSTER_DNS_IP, "ports": [
             {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
             {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "kube-dns-node", "namespace": "kube-system",
                      "labels": {"kubernetes.io/service-name": "kube-dns",
                                 "endpointslice.kubernetes.io/managed-by": "htcondor-pool-test"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
         "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                   {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]},
        *user_cluster_role(COREDNS_USER, [
            {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
             "verbs": ["list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]),
    ]


def user_cluster_role(user: str, rules: list[dict]) -> list[dict]:
    """A ClusterRole of `rules` and its binding to `user`, the name in the certificate an
    add-on authenticates with (the ClusterRole takes the same name)."""
    rbac = "rbac.authorization.k8s.io"
    return [
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRole", "metadata": {"name": user}, "rules": rules},
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": user},
         "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": user},
         "subjects": [{"apiGroup": rbac, "kind": "User", "name": user}]},
    ]


def kube_router_rbac() -> list[dict]:
    """What kube-router's firewall reads, and no more: it watches pods, namespaces, nodes,
    Services, Endpoints, EndpointSlices and NetworkPolicies (its manifests' ClusterRole also grants
    leases and Service status, for the router and service proxy, which run nowhere here)."""
    return user_cluster_role(KUBE_ROUTER_USER, [
        {"apiGroups": [""], "resources": ["namespaces", "pods", "services", "nodes", "endpoints"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "list", "watch"]}])


def prometheus_rbac() -> list[dict]:
    """What Prometheus' Kubernetes service discovery reads (role `endpoints`: Endpoints, and
    the Services and pods behind them), as Prometheus' own example ClusterRole grants it."""
    return user_cluster_role(PROMETHEUS_USER, [
        {"apiGroups": [""], "resources": ["services", "endpoints", "pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]}])


def prometheus_config(kubeconfig: Path, scrape_interval: str) -> dict:
    """Prometheus' own example job for Kubernetes services (`kubernetes-service-endpoints`
    in documentation/examples/prometheus-kubernetes.yml): every endpoint of a Service
    annotated `prometheus.io/scrape: "true"`, at its `prometheus.io/port` and `path`."""
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [{
            "job_name": "kubernetes-service-endpoints",
            "kubernetes_sd_configs": [{"role": "endpoints", "kubeconfig_file": str(kubeconfig)}],
            "relabel_configs": [
                {"source_labels": ["__meta_kubernetes_service_annotation_prometheus_io_scrape"],
                 "action": "keep", "regex": "true"},
                {"source_labels": ["__meta_kubernetes_service_annotation_prometheus_io_path"],
                 "action": "replace", "target_label": "__metrics_path__", "regex": "(.+)"},
                {"source_labels": ["__address__", "__meta_kubernetes_service_annotation_prometheus_io_port"],
                 "action": "replace", "regex": r"([^:]+)(?::\d+)?;(\d+)", "replacement": "$1:$2",
                 "target_label": "__address__"},
                {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
            ],
        }],
    }


def corefile(kubeconfig: Path) -> str:
    return f"""\
.:53 {{
    errors
    ready 127.0.0.1:8181
    # Nothing outside the cluster to forward to: every name and address is answered
    # here, unknown ones with NXDOMAIN.
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} htcondor-pool-test
        pods insecure
    }}
    cache 5
}}
"""
