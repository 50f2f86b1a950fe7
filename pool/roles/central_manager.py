"""CentralManager: the collector and the negotiator. A Deployment NAME-central-manager of
one pod (Recreate: never two collectors side by side), the Service NAME-central-manager on
HTCondor's port, through which every other daemon reaches the collector, and the
PersistentVolumeClaim NAME-central-manager-spool, where the negotiator keeps its
accounting (users' usage and priorities) across pods. Its pods mount the pool's signing
key. The schedd and the workers start once it is Available (its collector answers)."""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from ..args import RoleSpec
from ..condor_config import CONDOR_PORT
from .pods import SpoolSpec, pod_spec, register_daemon, register_spool_claim
from .shared import Credential, PoolConfig, Role, labels, object_name, selector

ROLE = "centralManager"


def host(instance: str, namespace_name: str) -> str:
    """The central manager's Service's name in cluster DNS: where every daemon finds the
    collector, and the pool's UID_DOMAIN and TRUST_DOMAIN."""
    return f"{object_name(instance, ROLE)}.{namespace_name}.svc.cluster.local"


def service(instance: str, namespace_name) -> dict:
    return {
        "metadata": {"name": object_name(instance, ROLE), "namespace": namespace_name,
                     "labels": labels(instance, ROLE)},
        "spec": {
            "type": "ClusterIP",
            "selector": selector(instance, ROLE),
            "ports": [{"name": "condor", "port": CONDOR_PORT, "targetPort": "condor", "protocol": "TCP"}],
        },
    }


def pod(spec: RoleSpec, config_map_name="config", credential_secret="credential", spool="spool") -> dict:
    """The central manager's pod (with placeholder names: what the namespace's Pod Security
    level is computed from)."""
    return pod_spec(ROLE, spec, config_map_name, credential_secret, spool_claim=spool)


@dataclass(frozen=True)
class CentralManagerArgs:
    instance: str  # the pool's name: objects are NAME-central-manager, NAME-central-manager-spool
    namespace: pulumi.Input[str]
    spec: RoleSpec  # image, CPU, memory, disk, placement
    spool: SpoolSpec
    config: PoolConfig
    credential: Credential  # the signing key's Secret
    # What its pod waits for besides its config, credential and volume: the pool's
    # NetworkPolicies, so that no pod is reachable from outside the pool from its start.
    after: list[pulumi.Resource]


class CentralManager(Role):
    """The central manager's Service, volume and Deployment."""

    # The Deployment: the schedd and the workers wait for it to be Available.
    deployment: k8s.apps.v1.Deployment
    deployment_name: pulumi.Output[str]
    service_name: pulumi.Output[str]
    address: pulumi.Output[str]  # NAME-central-manager.NAMESPACE.svc.cluster.local:9618

    def __init__(self, name: str, args: CentralManagerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("CentralManager", name, opts)
        instance, namespace = args.instance, args.namespace
        service_object = k8s.core.v1.Service(f"{instance}-central-manager", opts=self.object_options(),
                                             **service(instance, namespace))
        claim = register_spool_claim(instance, ROLE, namespace, args.spool, self)
        # Not after the Service: its pods report to their own collector, not through the
        # Service, and pulumi-kubernetes holds a Service with a selector until its endpoints
        # have been still for 10 s, which would put 10 s before every pod. The Service is
        # created beside the central manager, long before the schedd and workers that reach
        # the central manager through it start (once it is available).
        self.deployment = register_daemon(
            instance, namespace, ROLE, pod(args.spec, args.config.config_map.metadata.name,
                                           args.credential.secret.metadata.name, claim.metadata.name),
            1, args.config, args.credential, [*args.after, claim], self)
        self.deployment_name = self.deployment.metadata.name
        self.service_name = service_object.metadata.name
        self.address = pulumi.Output.concat(service_object.metadata.name, ".", namespace,
                                            f".svc.cluster.local:{CONDOR_PORT}")
        self.register_outputs({"deployment_name": self.deployment_name, "service_name": self.service_name,
                               "address": self.address})
