"""The pool's Kubernetes objects as plain manifests (camelCase dicts, as the API takes them).

Pure functions: values may be Pulumi Outputs (names, checksums), which pulumi-kubernetes
resolves, but nothing here registers a resource. HTCondorPool turns these into resources;
tests validate them against the Kubernetes OpenAPI schema and the pod emulator runs them.
"""

import json

from .args import RoleSpec
from .worker_pools import DEFAULT_POOL, GPU_RESOURCE, deployment_name
from .condor_config import (
    CONDOR_CONFIG, CONDOR_PORT, CONFIG_DIR, CPUS_ENV, GPU_SNIPPET, WORKER_POOL_ENV, CREDENTIAL_DIR, CREDENTIAL_SOURCE_DIR, KEY_FILE_NAME,
    DISK_KB_ENV, LOCAL_DIR, MEMORY_MB_ENV, SHARED_SNIPPETS, SPOOL_DIR, SUBMIT_HOME_DIR, TOKEN_FILE_NAME, role_snippet_name,
)
from .condor_config import AUTOSCALER_SNIPPET, METRICS_SNIPPET, SLOT_DISK_PERCENT
from .credentials import SIGNING_KEY_ROLES
from .defaults import AUTOSCALER_RESOURCES, METRICS_PORT, METRICS_RESOURCES
from .quantity import parse_quantity
from .security import CONDOR_ID, WRITABLE_SCRATCH, container_security_context, pod_security_context
from .validation import egress_except

# Kubernetes component names (labels, object-name suffixes) of the config roles.
COMPONENTS = {"centralManager": "central-manager", "schedd": "schedd", "worker": "worker"}
CONTAINER = "htcondor"
ENTRYPOINT = "entrypoint.sh"
PRESTOP_DRAIN = "prestop-drain.sh"
SCRIPTS = (ENTRYPOINT, PRESTOP_DRAIN)
# Central manager and schedd: long enough for HTCondor's graceful shutdown (the schedd
# writes its queue and tells its shadows), as Kubernetes' own default.
DEFAULT_GRACE_SECONDS = 30
PASSWORD_KEY = KEY_FILE_NAME
# The Pod Security Standard the pool's namespace warns and audits at: the strongest.
POD_SECURITY_GOAL = "restricted"
CHECKSUM_CONFIG = "htcondor-pool/config-checksum"
# Of the role's credential (the signing key, or the role's token): a new one rolls the pods.
CHECKSUM_CREDENTIAL = "htcondor-pool/credential-checksum"

# What each role's probes ask HTCondor, only ever of the pod's own daemons: a probe that
# depended on the central manager would fail every worker during a central-manager outage.
#
# Readiness: the role's daemon answers a real query. A schedd busy with a large queue, or a
# collector under a burst of updates, that cannot answer within the timeout is taken out of
# the Service (the central manager's) until it can: nothing more.
READINESS_COMMANDS = {
    # The collector answers a query on its own port (the Service routes only to ready pods,
    # so this must not go through the Service).
    "centralManager": ["condor_status", "-pool", f"127.0.0.1:{CONDOR_PORT}", "-collector", "-af", "Name"],
    # The local schedd answers a queue query (found through its address file).
    "schedd": ["condor_q", "-totals"],
    # The local startd answers a query sent straight to the address in its address file
    # (`condor_who -quick` reads files and succeeds even when the startd is hung).
    "worker": ["/bin/sh", "-c",
               'condor_status -direct "$(head -n 1 "$(condor_config_val STARTD_ADDRESS_FILE)")" -af Name'],
}
# Liveness: the pod's condor_master answers (`condor_ping` of it, straight at its address
# file; a master answers no status query). The master does none of the pool's work, so it
# answers even while its schedd or collector is busy;
# and it looks after those itself (restarting one that exits, killing one that stops
# answering it for NOT_RESPONDING_TIMEOUT). A liveness probe that ran the readiness query
# would have the kubelet restart a healthy but busy daemon: a restarted schedd drops its
# shadows' connections, a restarted collector forgets the pool's ads.
LIVENESS_COMMAND = ["/bin/sh", "-c",
                    'condor_ping -addr "$(head -n 1 "$(condor_config_val MASTER_ADDRESS_FILE)")" -type MASTER READ']


# The label naming a named worker pool's pods (the default pool's pods have none, as before
# worker pools existed, so that their Deployment's template and selector stay as they were).
WORKER_POOL_LABEL = "htcondor-pool/worker-pool"


def component(role: str, pool: str = DEFAULT_POOL) -> str:
    """The component label: a named worker pool's is its own, so that no Deployment's
    selector takes another's pods."""
    return COMPONENTS[role] if pool == DEFAULT_POOL else f"{COMPONENTS[role]}-{pool}"


def labels(instance: str, role: str | None = None, pool: str = DEFAULT_POOL) -> dict:
    """Kubernetes' recommended labels."""
    result = {
        "app.kubernetes.io/name": "htcondor",
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/part-of": "htcondor-pool",
        "app.kubernetes.io/managed-by": "pulumi",
    }
    if role:
        result["app.kubernetes.io/component"] = component(role, pool)
    if pool != DEFAULT_POOL:
        result[WORKER_POOL_LABEL] = pool
    return result


def selector(instance: str, role: str, pool: str = DEFAULT_POOL) -> dict:
    keys = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")
    return {k: v for k, v in labels(instance, role, pool).items() if k in keys}


def object_name(instance: str, role: str) -> str:
    return f"{instance}-{COMPONENTS[role]}"


def namespace(name: str, instance: str, enforce: str) -> dict:
    """The pool's namespace, where Pod Security Admission enforces `enforce` (the strongest
    standard every pod of the pool meets) and warns and audits at `restricted`."""
    admission = {f"pod-security.kubernetes.io/{mode}": level
                 for mode, level in (("enforce", enforce), ("warn", POD_SECURITY_GOAL), ("audit", POD_SECURITY_GOAL))}
    return {"metadata": {"name": name, "labels": {**labels(instance), **admission}}}


def password_secret(instance: str, namespace_name, password_file_b64) -> dict:
    return {
        "metadata": {"name": credential_secret_name(instance, "centralManager"), "namespace": namespace_name,
                     "labels": labels(instance)},
        "type": "Opaque",
        "data": {PASSWORD_KEY: password_file_b64},
    }


def token_secret_name(instance: str, role: str) -> str:
    return f"{object_name(instance, role)}-token"


def token_secret(instance: str, role: str, namespace_name, token_b64, keys_b64: dict | None = None) -> dict:
    """A role's IDTOKEN, as the one token of HTCondor's token directory; and the keys, by
    key id, it verifies other tokens with (the schedd's SCHEDD key, with burst workers)."""
    return {
        "metadata": {"name": token_secret_name(instance, role), "namespace": namespace_name,
                     "labels": labels(instance, role)},
        "type": "Opaque",
        "data": {TOKEN_FILE_NAME: token_b64, **(keys_b64 or {})},
    }


def credential_secret_name(instance: str, role: str) -> str:
    """The Secret a role's pods mount: the signing key's, or the role's token's."""
    return f"{instance}-pool-password" if role in SIGNING_KEY_ROLES else token_secret_name(instance, role)


def credential_file(role: str) -> str:
    """The file HTCondor reads a role's credential from: the signing key, or the token."""
    return f"{CREDENTIAL_DIR}/{KEY_FILE_NAME if role in SIGNING_KEY_ROLES else TOKEN_FILE_NAME}"


def config_map_name(instance: str) -> str:
    return f"{instance}-config"


def config_map(instance: str, namespace_name, files: dict[str, str]) -> dict:
    return {
        "metadata": {"name": config_map_name(instance), "namespace": namespace_name,
                     "labels": labels(instance)},
        "data": dict(files),
    }


def pool_selector(instance: str) -> dict:
    """Every pod of this pool, whatever its role."""
    keys = ("app.kubernetes.io/name", "app.kubernetes.io/instance")
    return {k: v for k, v in labels(instance).items() if k in keys}


def client_labels(instance: str, client_component: str) -> dict:
    """The labels of a program of the pool that is no HTCondor role (the exporter, the
    autoscaler): the pool's, with its own component."""
    return {**labels(instance), "app.kubernetes.io/component": client_component}


def client_selector(instance: str, client_component: str) -> dict:
    return {**pool_selector(instance), "app.kubernetes.io/component": client_component}


def network_policy(instance: str, namespace_name, allowed_cidrs: tuple[str, ...]) -> dict:
    """Ingress to the pool's pods: HTCondor's port, from the pool's own pods and from the
    allowed CIDRs (outside submit hosts or workers). Nothing else reaches them, no other
    port either (exec probes do not use the network)."""
    sources = [{"podSelector": {"matchLabels": pool_selector(instance)}}]
    sources += [{"ipBlock": {"cidr": cidr}} for cidr in allowed_cidrs]
    return {
        "metadata": {"name": f"{instance}-ingress", "namespace": namespace_name, "labels": labels(instance)},
        "spec": {
            "podSelector": {"matchLabels": pool_selector(instance)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": CONDOR_PORT}]}],
        },
    }


DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def egress_policy(instance: str, namespace_name) -> dict:
    """Egress of the pool's pods, daemons and jobs alike: HTCondor's port, and DNS (to any
    server: a cluster's DNS may be a Service, a node-local cache or the node itself).
    HTCondor's port to any address, not only the pool's pods and allowedCidrs: a policy
    cannot name the central manager's Service, and while that Service has no endpoint (the
    central manager being replaced) a CNI checks the packet against the policy with the
    Service's own address. Dropped there, every daemon's connect to the collector would
    hang until its timeout, and a schedd so blocked stops serving its running jobs;
    allowed, kube-proxy refuses it at once. Nothing else goes out: not the Kubernetes API
    server, not other namespaces' services, not the cloud's instance metadata."""
    return {
        "metadata": {"name": f"{instance}-egress", "namespace": namespace_name, "labels": labels(instance)},
        "spec": {
            "podSelector": {"matchLabels": pool_selector(instance)},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"protocol": "TCP", "port": CONDOR_PORT}]}, {"ports": DNS_PORTS}],
        },
    }


def worker_egress_policy(instance: str, namespace_name, pools: list[str], egress_cidrs: tuple[str, ...]) -> dict:
    """What jobs on the workers (of every worker pool) may reach besides the pool, on any
    port: the egress CIDRs, less the link-local and private ranges inside each
    (pool/validation.py)."""
    blocks = []
    for cidr in egress_cidrs:
        block = {"cidr": cidr}
        if except_ := egress_except(cidr):
            block["except"] = except_
        blocks.append({"ipBlock": block})
    components = sorted(component("worker", pool) for pool in pools)
    return {
        "metadata": {"name": f"{instance}-worker-egress", "namespace": namespace_name, "labels": labels(instance)},
        "spec": {
            "podSelector": {"matchLabels": pool_selector(instance), "matchExpressions": [
                {"key": "app.kubernetes.io/component", "operator": "In", "values": components}]},
            "policyTypes": ["Egress"],
            "egress": [{"to": blocks}] if blocks else [],
        },
    }


# The roles whose state outlives their pods on a PersistentVolumeClaim of their own: the
# schedd's queue, and the central manager's accounting (the negotiator's, in its SPOOL).
SPOOL_ROLES = ("centralManager", "schedd")


def spool_claim_name(instance: str, role: str = "schedd") -> str:
    return f"{object_name(instance, role)}-spool"


def spool_claim(instance: str, role: str, namespace_name, size: str, storage_class: str | None,
                access_mode: str) -> dict:
    """A role's volume (SPOOL_ROLES). The schedd's holds its SPOOL and the submitters' home
    directories (subPaths `spool` and `home`), so the queue and the jobs' files outlive the
    schedd's pod; the central manager's is its SPOOL, so the negotiator's accounting (users'
    usage and priorities) outlives the central manager's pod."""
    spec = {"accessModes": [access_mode], "resources": {"requests": {"storage": size}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {
        "metadata": {"name": spool_claim_name(instance, role), "namespace": namespace_name,
                     "labels": labels(instance, role)},
        "spec": spec,
    }


def role_config_keys(role: str, gpus: int = 0) -> list[str]:
    """The ConfigMap keys a role's pods mount (workers with GPUs: the GPU snippet too)."""
    scripts = [ENTRYPOINT, PRESTOP_DRAIN] if role == "worker" else [ENTRYPOINT]
    gpu = [GPU_SNIPPET] if gpus else []
    return ["condor_config", *SHARED_SNIPPETS, role_snippet_name(role), *gpu, *scripts]


def central_manager_service(instance: str, namespace_name) -> dict:
    return {
        "metadata": {"name": object_name(instance, "centralManager"), "namespace": namespace_name,
                     "labels": labels(instance, "centralManager")},
        "spec": {
            "type": "ClusterIP",
            "selector": selector(instance, "centralManager"),
            "ports": [{"name": "condor", "port": CONDOR_PORT, "targetPort": "condor", "protocol": "TCP"}],
        },
    }


def _probe(command: list[str], period: int, failures: int) -> dict:
    return {"exec": {"command": command}, "periodSeconds": period, "timeoutSeconds": 10,
            "failureThreshold": failures}


HOME_DIR_ENV = "HTCONDOR_POOL_HOME_DIR"
# Where the entrypoint copies the role's credential from, and to (see condor_config).
CREDENTIAL_SOURCE_ENV = "HTCONDOR_POOL_CREDENTIAL_SOURCE"
CREDENTIAL_DIR_ENV = "HTCONDOR_POOL_CREDENTIAL_DIR"


def _env(role: str, pool: str = DEFAULT_POOL) -> list[dict]:
    env = [{"name": "CONDOR_CONFIG", "value": CONDOR_CONFIG},
           {"name": CREDENTIAL_SOURCE_ENV, "value": CREDENTIAL_SOURCE_DIR},
           {"name": CREDENTIAL_DIR_ENV, "value": CREDENTIAL_DIR}]
    if role == "schedd":
        # The entrypoint creates the submitters' home directories on the schedd's volume.
        env.append({"name": HOME_DIR_ENV, "value": SUBMIT_HOME_DIR})
    if role == "worker":
        # The slot advertises the container's own limits; Kubernetes rounds CPUs up.
        env += [
            {"name": WORKER_POOL_ENV, "value": pool},
            {"name": CPUS_ENV, "valueFrom": {"resourceFieldRef": {
                "containerName": CONTAINER, "resource": "limits.cpu", "divisor": "1"}}},
            {"name": MEMORY_MB_ENV, "valueFrom": {"resourceFieldRef": {
                "containerName": CONTAINER, "resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": DISK_KB_ENV, "valueFrom": {"resourceFieldRef": {
                "containerName": CONTAINER, "resource": "limits.ephemeral-storage", "divisor": "1Ki"}}},
        ]
    return env


def pod_spec(role: str, spec: RoleSpec, config_map_name, credential_secret, worker_grace_seconds: int,
             spool_claim=None, unprivileged_workers: bool = False, pool: str = DEFAULT_POOL) -> dict:
    """A role's pod (a worker's, of worker pool `pool`). `credential_secret` names the
    Secret with the role's credential (the signing key, or the role's token); the schedd's
    and the central manager's need the name of their volume's claim, `spool_claim`."""
    if (role in SPOOL_ROLES) != (spool_claim is not None):
        raise ValueError("the schedd and the central manager, and only they, mount a spool claim")
    if spec.gpus and role != "worker":
        raise ValueError("only workers have GPUs")
    resources = {"cpu": spec.cpu, "memory": spec.memory, "ephemeral-storage": spec.disk}
    if spec.gpus:
        resources[GPU_RESOURCE] = str(spec.gpus)  # an extended resource: request and limit alike
    items = [{"key": key, "path": key if key == "condor_config" or key in SCRIPTS else f"config.d/{key}"}
             for key in role_config_keys(role, spec.gpus)]
    for item in items:
        if item["key"] in SCRIPTS:
            item["mode"] = 0o555
    container_extra = {}
    if role == "worker":
        # Leaving drains the worker first (see prestop-drain.sh and MAXJOBRETIREMENTTIME).
        container_extra["lifecycle"] = {"preStop": {"exec": {
            "command": ["/bin/sh", f"{CONFIG_DIR}/{PRESTOP_DRAIN}"]}}}
    pod = {
        # Pods never talk to the Kubernetes API: no token to steal.
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(role, unprivileged_workers),
        "terminationGracePeriodSeconds": worker_grace_seconds if role == "worker" else DEFAULT_GRACE_SECONDS,
        "enableServiceLinks": False,
        "containers": [{
            "name": CONTAINER,
            "image": spec.image,
            "command": ["/bin/sh", f"{CONFIG_DIR}/{ENTRYPOINT}"],
            "securityContext": container_security_context(role, unprivileged_workers),
            "env": _env(role, pool),
            "ports": [{"name": "condor", "containerPort": CONDOR_PORT, "protocol": "TCP"}],
            "resources": {"requests": dict(resources), "limits": dict(resources)},
            "readinessProbe": _probe(READINESS_COMMANDS[role], period=5, failures=3),
            "livenessProbe": {**_probe(LIVENESS_COMMAND, period=30, failures=4), "initialDelaySeconds": 30},
            **container_extra,
            "volumeMounts": [
                {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                {"name": "credential-source", "mountPath": CREDENTIAL_SOURCE_DIR, "readOnly": True},
                {"name": "credential", "mountPath": CREDENTIAL_DIR},
                {"name": "local", "mountPath": LOCAL_DIR},
                *({"name": name, "mountPath": path} for name, path in WRITABLE_SCRATCH.items()),
            ],
        }],
        "volumes": [
            {"name": "config", "configMap": {"name": config_map_name, "items": items, "defaultMode": 0o444}},
            # Readable by the pod's user only (root's, or condor's group's with fsGroup).
            {"name": "credential-source", "secret": {"secretName": credential_secret, "defaultMode": 0o400}},
            # The entrypoint's private copy, in memory: never on the node's disk.
            {"name": "credential", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            # On the node's disk, within the container's ephemeral-storage limit: each at most
            # that much, so that the kubelet evicts a pod that outgrows it before the node fills.
            {"name": "local", "emptyDir": {"sizeLimit": spec.disk}},
            *({"name": name, "emptyDir": {"sizeLimit": spec.disk}} for name in WRITABLE_SCRATCH),
        ],
    }
    if spool_claim is not None:
        # After the emptyDir: SPOOL is mounted inside LOCAL_DIR. The central manager, which
        # runs as condor, takes the whole volume: the kubelet makes a volume's root writable
        # by the fsGroup, but not a subPath directory it creates.
        pod["containers"][0]["volumeMounts"] += [
            {"name": "spool", "mountPath": SPOOL_DIR, "subPath": "spool"},
            {"name": "spool", "mountPath": SUBMIT_HOME_DIR, "subPath": "home"},
        ] if role == "schedd" else [{"name": "spool", "mountPath": SPOOL_DIR}]
        pod["volumes"].append({"name": "spool", "persistentVolumeClaim": {"claimName": spool_claim}})
    # Where the pods may run (pool/placement.py): nodeSelector, tolerations, affinity,
    # priorityClassName, as given.
    pod.update(spec.placement)
    return pod


def deployment(instance: str, namespace_name, role: str, pod: dict, replicas: int, checksums: dict,
               pool: str = DEFAULT_POOL) -> dict:
    """A role's Deployment of `pod` (pod_spec); a worker pool's, for workers. `checksums`
    become pod-template annotations: a change of config or credential changes the
    template, which rolls the pods."""
    name = deployment_name(instance, pool) if role == "worker" else object_name(instance, role)
    return {
        "metadata": {"name": name, "namespace": namespace_name, "labels": labels(instance, role, pool)},
        "spec": {
            "replicas": replicas,
            # One collector, one schedd at a time: never two side by side during a rollout
            # (and the schedd's ReadWriteOncePod volume admits one pod at a time anyway).
            "strategy": {"type": "RollingUpdate"} if role == "worker" else {"type": "Recreate"},
            "selector": {"matchLabels": selector(instance, role, pool)},
            "template": {
                "metadata": {"labels": labels(instance, role, pool), "annotations": dict(checksums)},
                "spec": pod,
            },
        },
    }


# ---- the metrics exporter (stack config `metrics`) -----------------------------------------
METRICS_COMPONENT = "metrics"
EXPORTER = "metrics_exporter.py"
# What the exporter and the autoscaler import (their tokens, Prometheus' text format and its
# server), mounted beside them.
POD_TOKEN = "pod_token.py"
PROMETHEUS_TEXT = "prometheus_text.py"
# The Grafana dashboard, in the ConfigMap NAME-dashboard under this key; Grafana's dashboard
# sidecar loads every ConfigMap with this label.
DASHBOARD_KEY = "htcondor-pool.json"
GRAFANA_DASHBOARD_LABEL = "grafana_dashboard"


def metrics_name(instance: str) -> str:
    """The exporter's Deployment, Service, NetworkPolicy and ServiceMonitor."""
    return f"{instance}-metrics"


def metrics_config_keys() -> list[str]:
    """The ConfigMap keys the exporter's pod mounts: HTCondor's client configuration (where
    the collector is, the pool's security) and the exporter itself."""
    return ["condor_config", *SHARED_SNIPPETS, METRICS_SNIPPET, EXPORTER, POD_TOKEN, PROMETHEUS_TEXT]


def _client_pod(component: str, script: str, image: str, placement: dict, config_map_name, credential_secret,
                keys: list[str], resources: dict, env: list[dict]) -> dict:
    """The pod of a program that runs no daemon, only HTCondor's client (the exporter, the
    autoscaler): the pool's own image (Python and HTCondor's bindings are in it), as the
    condor user with no capability and a read-only image (Pod Security `restricted`), with
    its token from its Secret and the ConfigMap's `keys` (programs beside condor_config,
    snippets in config.d)."""
    items = [{"key": key, "path": key if key == "condor_config" or key.endswith(".py") else f"config.d/{key}"}
             for key in keys]
    limits = {"cpu": resources["cpu"], "memory": resources["memory"], "ephemeral-storage": resources["disk"]}
    pod = {
        "automountServiceAccountToken": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}, "runAsNonRoot": True,
                            "runAsUser": CONDOR_ID, "runAsGroup": CONDOR_ID, "fsGroup": CONDOR_ID},
        "enableServiceLinks": False,
        "containers": [{
            "name": component,
            "image": image,
            "command": ["python3", f"{CONFIG_DIR}/{script}"],
            "securityContext": {"privileged": False, "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True},
            "env": [{"name": "CONDOR_CONFIG", "value": CONDOR_CONFIG},
                    {"name": CREDENTIAL_SOURCE_ENV, "value": CREDENTIAL_SOURCE_DIR},
                    {"name": CREDENTIAL_DIR_ENV, "value": CREDENTIAL_DIR},
                    *env,
                    {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
            "resources": {"requests": dict(limits), "limits": dict(limits)},
            "volumeMounts": [
                {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                {"name": "credential-source", "mountPath": CREDENTIAL_SOURCE_DIR, "readOnly": True},
                {"name": "credential", "mountPath": CREDENTIAL_DIR},
                *({"name": name, "mountPath": path} for name, path in WRITABLE_SCRATCH.items()),
            ],
        }],
        "volumes": [
            {"name": "config", "configMap": {"name": config_map_name, "items": items, "defaultMode": 0o444}},
            {"name": "credential-source", "secret": {"secretName": credential_secret, "defaultMode": 0o400}},
            {"name": "credential", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            *({"name": name, "emptyDir": {"sizeLimit": resources["disk"]}} for name in WRITABLE_SCRATCH),
        ],
    }
    pod.update(placement)
    return pod


METRICS_CONTAINER_PORT = {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}


def metrics_pod_spec(image: str, placement: dict, config_map_name, credential_secret) -> dict:
    """The exporter's pod, answering only on its metrics port. Its probes ask the HTTP
    server, not the collector: an exporter whose collector is away must stay up to say so."""
    pod = _client_pod(METRICS_COMPONENT, EXPORTER, image, placement, config_map_name, credential_secret,
                      metrics_config_keys(), METRICS_RESOURCES,
                      [{"name": "HTCONDOR_POOL_METRICS_PORT", "value": str(METRICS_PORT)}])
    probe = {"httpGet": {"path": "/healthz", "port": "metrics"}, "timeoutSeconds": 5}
    pod["containers"][0].update({
        "ports": [dict(METRICS_CONTAINER_PORT)],
        "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**probe, "periodSeconds": 30, "failureThreshold": 4, "initialDelaySeconds": 10},
    })
    return pod


def metrics_deployment(instance: str, namespace_name, pod: dict, checksums: dict) -> dict:
    return {
        "metadata": {"name": metrics_name(instance), "namespace": namespace_name,
                     "labels": client_labels(instance, METRICS_COMPONENT)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": client_selector(instance, METRICS_COMPONENT)},
            "template": {"metadata": {"labels": client_labels(instance, METRICS_COMPONENT),
                                      "annotations": dict(checksums)},
                         "spec": pod},
        },
    }


def _scraped(instance: str, component: str) -> tuple[str, dict, dict]:
    """Name, labels and selector of a component Prometheus scrapes: the exporter, or the
    autoscaler (its decisions)."""
    name = autoscaler_name(instance) if component == AUTOSCALER_COMPONENT else metrics_name(instance)
    return name, client_labels(instance, component), client_selector(instance, component)


def metrics_service(instance: str, namespace_name, component: str = METRICS_COMPONENT) -> dict:
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


def metrics_network_policy(instance: str, namespace_name, allowed_cidrs: tuple[str, ...],
                           component: str = METRICS_COMPONENT) -> dict:
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


def service_monitor(instance: str, namespace_name, component: str = METRICS_COMPONENT) -> dict:
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


# ---- the autoscaler (stack config `maxWorkers`) ---------------------------------------------
AUTOSCALER_COMPONENT = "autoscaler"
AUTOSCALER = "autoscaler.py"
# Burst workers' Jobs and pods carry it (pool/files/autoscaler.py sets it).
BURST_LABEL = "htcondor-pool/burst"
# The API server's ports: 443 where it is reached as the `kubernetes` Service's endpoint on
# managed clusters, 6443 where it listens itself (kubeadm and most others).
API_SERVER_PORTS = (443, 6443)


def autoscaler_name(instance: str) -> str:
    """Its Deployment, ServiceAccount, Role, RoleBinding, token Secret and NetworkPolicy."""
    return f"{instance}-autoscaler"


def autoscaler_config_keys() -> list[str]:
    return ["condor_config", *SHARED_SNIPPETS, AUTOSCALER_SNIPPET, AUTOSCALER, POD_TOKEN, PROMETHEUS_TEXT]


def _ceil(value) -> int:
    whole = int(value)
    return whole if whole == value else whole + 1


def burst_shapes(instance: str, pools) -> list[dict]:
    """Every worker pool as the autoscaler sees it (its PoolShape): what one worker's slot
    offers, as the worker's own configuration computes it from the downward API, which
    rounds each limit up to its divisor (CPUs, MiB, KiB)."""
    shapes = []
    for pool in pools:
        shapes.append({
            "name": pool.name, "deployment": deployment_name(instance, pool.name), "workers": pool.workers,
            "max_workers": pool.max_workers, "idle_shutdown_seconds": pool.idle_shutdown_seconds,
            "cpus": _ceil(parse_quantity(pool.cpu)), "memory_mb": _ceil(parse_quantity(pool.memory) / 2**20),
            "disk_kb": _ceil(parse_quantity(pool.disk) / 2**10) * SLOT_DISK_PERCENT // 100, "gpus": pool.gpus,
        })
    return shapes


def autoscaler_pod_spec(image: str, placement: dict, config_map_name, credential_secret, service_account,
                        instance: str, shapes: list[dict], admission_policy: str, metrics: bool = False) -> dict:
    """The autoscaler's pod: the one pod of the pool that mounts a service-account token,
    whose Role lets it read the worker Deployments and create burst Jobs, nothing more, and
    whose Jobs `admission_policy` admits only as burst workers (before it creates any, it
    checks that the policy refuses a Job mounting its own token's Secret). Its liveness
    probe sees a decision taken within the last two minutes. With the pool's metrics on, it
    serves its decisions on the metrics port, as the exporter does."""
    env = [{"name": "HTCONDOR_POOL_INSTANCE", "value": instance},
           {"name": "HTCONDOR_POOL_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
           {"name": "HTCONDOR_POOL_BURST_POOLS", "value": json.dumps(shapes, sort_keys=True)},
           {"name": "HTCONDOR_POOL_ADMISSION_POLICY", "value": admission_policy},
           {"name": "HTCONDOR_POOL_ADMISSION_CHECK_SECRET", "value": credential_secret}]
    if metrics:
        env.append({"name": "HTCONDOR_POOL_METRICS_PORT", "value": str(METRICS_PORT)})
    pod = _client_pod(AUTOSCALER_COMPONENT, AUTOSCALER, image, placement, config_map_name, credential_secret,
                      autoscaler_config_keys(), AUTOSCALER_RESOURCES, env)
    pod.update({"serviceAccountName": service_account, "automountServiceAccountToken": True})
    container = pod["containers"][0]
    container["livenessProbe"] = {"exec": {"command": ["python3", f"{CONFIG_DIR}/{AUTOSCALER}", "--alive"]},
                                  "periodSeconds": 30, "timeoutSeconds": 10, "failureThreshold": 4,
                                  "initialDelaySeconds": 30}
    if metrics:
        container["ports"] = [dict(METRICS_CONTAINER_PORT)]
    return pod


def autoscaler_deployment(instance: str, namespace_name, pod: dict, checksums: dict) -> dict:
    return {
        "metadata": {"name": autoscaler_name(instance), "namespace": namespace_name,
                     "labels": client_labels(instance, AUTOSCALER_COMPONENT)},
        "spec": {
            "replicas": 1,
            # Never two deciding at once: each would count the other's burst workers late.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": client_selector(instance, AUTOSCALER_COMPONENT)},
            "template": {"metadata": {"labels": client_labels(instance, AUTOSCALER_COMPONENT),
                                      "annotations": dict(checksums)},
                         "spec": pod},
        },
    }


def autoscaler_service_account(instance: str, namespace_name) -> dict:
    return {
        "metadata": {"name": autoscaler_name(instance), "namespace": namespace_name,
                     "labels": client_labels(instance, AUTOSCALER_COMPONENT)},
        # Only the autoscaler's pod asks for its token (automountServiceAccountToken there).
        "automountServiceAccountToken": False,
    }


def autoscaler_role(instance: str, namespace_name, worker_deployments: list[str]) -> dict:
    """What the autoscaler does, in the pool's namespace, and nothing more: read the worker
    Deployments whose pod template burst workers copy, list burst Jobs and their pods, and
    create burst Jobs. It cannot delete, patch or exec into anything."""
    return {
        "metadata": {"name": autoscaler_name(instance), "namespace": namespace_name,
                     "labels": client_labels(instance, AUTOSCALER_COMPONENT)},
        "rules": [
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"],
             "resourceNames": sorted(worker_deployments)},
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list", "create"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        ],
    }


def autoscaler_role_binding(instance: str, namespace_name, role_name, account_name) -> dict:
    return {
        "metadata": {"name": autoscaler_name(instance), "namespace": namespace_name,
                     "labels": client_labels(instance, AUTOSCALER_COMPONENT)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": account_name, "namespace": namespace_name}],
    }


# The autoscaler's token for the schedd (signed with the SCHEDD key), beside the one for
# the collector (the pool's key) in its token directory.
SCHEDD_TOKEN_FILE_NAME = "schedd-token"


def autoscaler_token_secret(instance: str, namespace_name, token_b64, schedd_token_b64) -> dict:
    """The autoscaler's IDTOKENs (READ scope only): the collector's and the schedd's."""
    return {
        "metadata": {"name": f"{autoscaler_name(instance)}-token", "namespace": namespace_name,
                     "labels": client_labels(instance, AUTOSCALER_COMPONENT)},
        "type": "Opaque",
        "data": {TOKEN_FILE_NAME: token_b64, SCHEDD_TOKEN_FILE_NAME: schedd_token_b64},
    }


def autoscaler_egress_policy(instance: str, namespace_name) -> dict:
    """The autoscaler, besides what NAME-egress lets every pod of the pool reach, reaches
    the Kubernetes API server: its ports, at any address (a policy cannot name the API
    server, whose address differs from cluster to cluster)."""
    return {
        "metadata": {"name": f"{autoscaler_name(instance)}-egress", "namespace": namespace_name,
                     "labels": labels(instance)},
        "spec": {
            "podSelector": {"matchLabels": client_selector(instance, AUTOSCALER_COMPONENT)},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"protocol": "TCP", "port": port} for port in API_SERVER_PORTS]}],
        },
    }
