"""Autoscaler (stack config `maxWorkers` above `workers`): burst workers for idle jobs. A
one-replica Deployment NAME-autoscaler runs pool/files/autoscaler.py (shipped in the
ConfigMap) in the central manager's image; every few seconds it matches the idle jobs
against each bursting worker pool's slot and creates burst workers, Kubernetes Jobs copied
from that pool's Deployment (WorkerPool), which leave by themselves when idle.

Its objects: its READ-only HTCondor tokens (the Secret NAME-autoscaler-token: one for the
collector, one for the schedd, signed with the schedd's own key); the one service account
of the pool whose token a pod mounts, with a Role that lets it do only what it does; the
admission policy that lets that identity create burst workers and nothing else
(pool/burst_admission.py); with `networkPolicy`, its way to the API server; with
`metrics`, its decisions served for Prometheus (pool/roles/scraping.py)."""

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .. import burst_admission, idtokens
from ..condor_config import AUTOSCALER_SNIPPET, CONFIG_DIR, SHARED_SNIPPETS, SLOT_DISK_PERCENT, TOKEN_FILE_NAME
from ..condor_config import autoscaler_config
from ..credentials import AUTOSCALER_TOKEN_HOLDER, SCHEDD_KEY_ID, schedd_key
from ..defaults import AUTOSCALER_RESOURCES, METRICS_PORT
from ..quantity import parse_quantity
from ..worker_pools import WorkerPoolSpec, deployment_name
from . import scraping
from .pods import POD_TOKEN, PROMETHEUS_TEXT, client_deployment, client_files, client_pod
from .shared import (
    CHECKSUM_CONFIG, CHECKSUM_CREDENTIAL, PoolConfig, Role, arguments, base64_text, client_labels, client_selector,
    config_map_name, labels, pod_script, sha256, token_secret_name,
)

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


def config_files() -> dict[str, str]:
    """What the autoscaler adds to the pool's ConfigMap: its configuration and its program."""
    return {AUTOSCALER_SNIPPET: autoscaler_config(), AUTOSCALER: pod_script(AUTOSCALER), **client_files()}


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
    pod = client_pod(AUTOSCALER_COMPONENT, AUTOSCALER, image, placement, config_map_name, credential_secret,
                     autoscaler_config_keys(), AUTOSCALER_RESOURCES, env)
    pod.update({"serviceAccountName": service_account, "automountServiceAccountToken": True})
    container = pod["containers"][0]
    container["livenessProbe"] = {"exec": {"command": ["python3", f"{CONFIG_DIR}/{AUTOSCALER}", "--alive"]},
                                  "periodSeconds": 30, "timeoutSeconds": 10, "failureThreshold": 4,
                                  "initialDelaySeconds": 30}
    if metrics:
        container["ports"] = [dict(scraping.CONTAINER_PORT)]
    return pod


def autoscaler_deployment(instance: str, namespace_name, pod: dict, checksums: dict) -> dict:
    # Never two deciding at once: each would count the other's burst workers late.
    return client_deployment(instance, namespace_name, AUTOSCALER_COMPONENT, pod, checksums,
                             strategy={"type": "Recreate"})


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


def pod(instance: str, namespace_name: str, image: str, placement: dict, pools: list[WorkerPoolSpec], metrics: bool,
        config_map_name="config", credential_secret="credential", account="autoscaler") -> dict:
    """The autoscaler's pod (by default with placeholder names: what the namespace's Pod
    Security level is computed from). The central manager's image and placement: the
    pool's infrastructure."""
    return autoscaler_pod_spec(image, placement, config_map_name, credential_secret, account, instance,
                               burst_shapes(instance, pools), burst_admission.policy_name(instance, namespace_name),
                               metrics)


@dataclass(frozen=True)
class AutoscalerArgs:
    instance: str  # the pool's name: objects are NAME-autoscaler, NAME-autoscaler-token, ...
    namespace: pulumi.Input[str]
    # The namespace's name as text: the admission policy is cluster-scoped and named after it.
    namespace_name: str
    # The central manager's image and placement: the autoscaler is the pool's infrastructure.
    image: str
    placement: dict
    config: PoolConfig  # the ConfigMap, with config_files() in it
    # The pool's signing key and TRUST_DOMAIN, to mint the autoscaler's own tokens from.
    signing_key: pulumi.Output[str]
    trust_domain: str
    # Every worker pool (the autoscaler sees each one's shape), and the Deployments of those
    # that may burst, by pool name: it reads their pod templates, so it comes after them.
    pools: list[WorkerPoolSpec]
    worker_deployments: dict[str, k8s.apps.v1.Deployment]
    unprivileged_workers: bool  # what a burst worker's pod may be (the admission policy)
    # True: its NetworkPolicies (to the API server; with metrics, from metricsAllowedCidrs).
    network_policy: bool
    # What its pod waits for besides its own objects: the pool's NetworkPolicies.
    after: list[pulumi.Resource]
    metrics: bool  # serve its decisions for Prometheus
    metrics_allowed_cidrs: tuple[str, ...] = ()
    metrics_service_monitor: bool = False


class Autoscaler(Role):
    """Burst workers (stack config `maxWorkers`): the autoscaler's Deployment, with its
    own READ-only HTCondor token, a ServiceAccount whose Role lets it do only what it
    does, and (with `networkPolicy`) its way to the API server. Created after the worker
    Deployments, whose pod template it reads; destroyed before them, so that no burst
    worker is created while `pulumi destroy` deletes them (and, through their owner
    reference, their burst workers)."""

    deployment_name: pulumi.Output[str]

    def __init__(self, name: str, args: AutoscalerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("Autoscaler", name, opts)
        instance, namespace, trust_domain = args.instance, args.namespace, args.trust_domain
        config, policy, worker_deployments = args.config.config_map, args.after, args.worker_deployments
        subject, scopes = AUTOSCALER_TOKEN_HOLDER.subject(trust_domain), AUTOSCALER_TOKEN_HOLDER.scopes
        token = pulumi.Output.secret(args.signing_key.apply(
            lambda key: idtokens.mint(key, trust_domain, subject, scopes)))
        schedd_token = pulumi.Output.secret(args.signing_key.apply(
            lambda key: idtokens.mint(schedd_key(key), trust_domain, subject, scopes, key_id=SCHEDD_KEY_ID)))
        secret = k8s.core.v1.Secret(f"{instance}-autoscaler-token", opts=self.object_options(),
                                    **autoscaler_token_secret(instance, namespace, base64_text(token),
                                                              base64_text(schedd_token)))
        account = k8s.core.v1.ServiceAccount(f"{instance}-autoscaler", opts=self.object_options(),
                                             **arguments(autoscaler_service_account(instance, namespace)))
        role = k8s.rbac.v1.Role(f"{instance}-autoscaler", opts=self.object_options(), **autoscaler_role(
            instance, namespace, [deployment_name(instance, p) for p in worker_deployments]))
        # What its Jobs may be (burst workers, nothing else), in force before its Role is
        # bound: the Role alone would let it mount any Secret of the namespace in a Job.
        policy_labels = client_labels(instance, AUTOSCALER_COMPONENT)
        admission = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            f"{instance}-autoscaler", opts=self.object_options(), **arguments(burst_admission.policy(
                instance, args.namespace_name, {p.name: p.image for p in args.pools if p.bursts},
                config_map_name(instance), token_secret_name(instance, "worker"),
                args.unprivileged_workers, policy_labels)))
        admission_binding = k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            f"{instance}-autoscaler", opts=self.object_options(), **arguments(burst_admission.binding(
                instance, args.namespace_name, admission.metadata.name, policy_labels)))
        binding = k8s.rbac.v1.RoleBinding(
            f"{instance}-autoscaler", opts=self.object_options(depends_on=[admission_binding]),
            **arguments(autoscaler_role_binding(instance, namespace, role.metadata.name, account.metadata.name)))
        egress = [k8s.networking.v1.NetworkPolicy(f"{instance}-autoscaler-egress", opts=self.object_options(),
                                                  **autoscaler_egress_policy(instance, namespace))] \
            if args.network_policy else []
        if args.metrics:
            # Its decisions, scraped as the exporter is (Service annotations, ServiceMonitor).
            if args.network_policy:
                egress.append(k8s.networking.v1.NetworkPolicy(
                    f"{instance}-autoscaler-ingress", opts=self.object_options(), **scraping.network_policy(
                        instance, namespace, args.metrics_allowed_cidrs, AUTOSCALER_COMPONENT)))
            service = k8s.core.v1.Service(f"{instance}-autoscaler", opts=self.object_options(),
                                          **scraping.service(instance, namespace, AUTOSCALER_COMPONENT))
            if args.metrics_service_monitor:
                scraping.register_service_monitor(instance, namespace, AUTOSCALER_COMPONENT, service, self)
        deployment = k8s.apps.v1.Deployment(
            autoscaler_name(instance), opts=self.object_options(depends_on=[
                config, secret, binding, *policy, *egress, *worker_deployments.values()]),
            **autoscaler_deployment(
                instance, namespace, pod(instance, args.namespace_name, args.image, args.placement, args.pools,
                                         args.metrics, config.metadata.name, secret.metadata.name,
                                         account.metadata.name),
                {CHECKSUM_CONFIG: args.config.checksum(autoscaler_config_keys()),
                 CHECKSUM_CREDENTIAL: pulumi.Output.unsecret(
                     pulumi.Output.all(token, schedd_token).apply(lambda parts: sha256("".join(parts))))}))
        self.deployment_name = deployment.metadata.name
        self.register_outputs({"deployment_name": self.deployment_name})
