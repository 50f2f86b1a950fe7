"""The pod shapes the roles share, as plain manifests (camelCase dicts): an HTCondor
daemon's pod and its Deployment (the central manager, the schedd, every worker pool), with
the volume some of them keep their state on; and the pod of a program that runs no daemon,
only HTCondor's client (the exporter, the autoscaler). Pure functions, but for
`register_daemon` and `register_spool_claim`, which register a daemon's Deployment and its
volume for its role's component."""

from dataclasses import dataclass

import pulumi_kubernetes as k8s

from ..args import RoleSpec
from ..condor_config import (
    CONDOR_CONFIG, CONDOR_PORT, CONFIG_DIR, CPUS_ENV, CREDENTIAL_DIR, CREDENTIAL_SOURCE_DIR, DISK_KB_ENV, GPU_SNIPPET,
    KEY_FILE_NAME, LOCAL_DIR, MEMORY_MB_ENV, SHARED_SNIPPETS, SPOOL_DIR, SUBMIT_HOME_DIR, TOKEN_FILE_NAME,
    WORKER_POOL_ENV, role_snippet_name,
)
from ..credentials import SIGNING_KEY_ROLES
from ..security import CONDOR_ID, WRITABLE_SCRATCH, container_security_context, pod_security_context
from ..worker_pools import DEFAULT_POOL, GPU_RESOURCE, deployment_name
from .shared import (
    CHECKSUM_CONFIG, CHECKSUM_CREDENTIAL, Credential, PoolConfig, Role, client_labels, client_selector, labels,
    object_name, pod_script, selector,
)

CONTAINER = "htcondor"
ENTRYPOINT = "entrypoint.sh"
PRESTOP_DRAIN = "prestop-drain.sh"
SCRIPTS = (ENTRYPOINT, PRESTOP_DRAIN)
# Central manager and schedd: long enough for HTCondor's graceful shutdown (the schedd
# writes its queue and tells its shadows), as Kubernetes' own default.
DEFAULT_GRACE_SECONDS = 30


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


def credential_file(role: str) -> str:
    """The file HTCondor reads a role's credential from: the signing key, or the token."""
    return f"{CREDENTIAL_DIR}/{KEY_FILE_NAME if role in SIGNING_KEY_ROLES else TOKEN_FILE_NAME}"


# ---- an HTCondor daemon's pod ---------------------------------------------------------------
# The roles whose state outlives their pods on a PersistentVolumeClaim of their own: the
# schedd's queue, and the central manager's accounting (the negotiator's, in its SPOOL).
SPOOL_ROLES = ("centralManager", "schedd")


@dataclass(frozen=True)
class SpoolSpec:
    """A role's PersistentVolumeClaim: size, storage class (None: the cluster's default)
    and access mode."""

    size: str
    storage_class: str | None
    access_mode: str


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


def register_spool_claim(instance: str, role: str, namespace_name, spool: SpoolSpec,
                         parent: Role) -> k8s.core.v1.PersistentVolumeClaim:
    """A role's volume, a child of the role's component `parent`."""
    return k8s.core.v1.PersistentVolumeClaim(
        spool_claim_name(instance, role), opts=parent.object_options(), **spool_claim(
            instance, role, namespace_name, spool.size, spool.storage_class, spool.access_mode))


def role_config_keys(role: str, gpus: int = 0) -> list[str]:
    """The ConfigMap keys a role's pods mount (workers with GPUs: the GPU snippet too)."""
    scripts = [ENTRYPOINT, PRESTOP_DRAIN] if role == "worker" else [ENTRYPOINT]
    gpu = [GPU_SNIPPET] if gpus else []
    return ["condor_config", *SHARED_SNIPPETS, role_snippet_name(role), *gpu, *scripts]


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


def pod_spec(role: str, spec: RoleSpec, config_map_name, credential_secret,
             grace_seconds: int = DEFAULT_GRACE_SECONDS, spool_claim=None, unprivileged_workers: bool = False,
             pool: str = DEFAULT_POOL) -> dict:
    """A role's pod (a worker's, of worker pool `pool`). `credential_secret` names the
    Secret with the role's credential (the signing key, or the role's token); the schedd's
    and the central manager's need the name of their volume's claim, `spool_claim`.
    `grace_seconds`: how long a leaving pod may take (a worker's drain: the stack's
    workerGracePeriodSeconds)."""
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
        "terminationGracePeriodSeconds": grace_seconds,
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


def register_daemon(instance: str, namespace_name, role: str, pod: dict, replicas: int, config: PoolConfig,
                    credential: Credential, after: list, parent: Role, pool: str = DEFAULT_POOL,
                    gpus: int = 0) -> k8s.apps.v1.Deployment:
    """A role's Deployment of `pod`, a child of the role's component `parent`: created after
    the ConfigMap, the credential's Secret and `after`; its pods roll when what they mount
    of either changes."""
    checksums = {CHECKSUM_CONFIG: config.checksum(role_config_keys(role, gpus)),
                 CHECKSUM_CREDENTIAL: credential.checksum}
    manifest = deployment(instance, namespace_name, role, pod, replicas, checksums, pool=pool)
    return k8s.apps.v1.Deployment(
        manifest["metadata"]["name"],
        opts=parent.object_options(depends_on=[config.config_map, credential.secret, *after]), **manifest)


# ---- a client program's pod (the exporter, the autoscaler) ---------------------------------
# What the exporter and the autoscaler import (their tokens, Prometheus' text format and its
# server), mounted beside them.
POD_TOKEN = "pod_token.py"
PROMETHEUS_TEXT = "prometheus_text.py"


def client_files() -> dict[str, str]:
    """What a client program imports, for the pool's ConfigMap."""
    return {module: pod_script(module) for module in (POD_TOKEN, PROMETHEUS_TEXT)}


def client_pod(component: str, script: str, image: str, placement: dict, config_map_name, credential_secret,
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


def client_deployment(instance: str, namespace_name, component: str, pod: dict, checksums: dict, **spec) -> dict:
    """A client program's Deployment NAME-COMPONENT of one `pod` (client_pod), with
    `checksums` as pod-template annotations and `spec`'s fields besides (a strategy)."""
    return {
        "metadata": {"name": f"{instance}-{component}", "namespace": namespace_name,
                     "labels": client_labels(instance, component)},
        "spec": {
            "replicas": 1,
            **spec,
            "selector": {"matchLabels": client_selector(instance, component)},
            "template": {"metadata": {"labels": client_labels(instance, component), "annotations": dict(checksums)},
                         "spec": pod},
        },
    }

