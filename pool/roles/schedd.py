"""Schedd: the pool's submit point. A Deployment NAME-schedd of one pod (Recreate: one
schedd owns the queue at a time) and the PersistentVolumeClaim NAME-schedd-spool, which
holds its SPOOL (the job queue and history) and the submitters' home directories, so
queued and running jobs, their input and their output outlive the pod. Its pods mount the
schedd's token (and, with burst workers, the key it verifies the autoscaler's with).
Created once the central manager is Available."""

from dataclasses import dataclass

import pulumi

from ..args import RoleSpec
from .pods import SpoolSpec, pod_spec, register_daemon, register_spool_claim
from .shared import Credential, PoolConfig, Role

ROLE = "schedd"


def pod(spec: RoleSpec, config_map_name="config", credential_secret="credential", spool="spool") -> dict:
    """The schedd's pod (with placeholder names: what the namespace's Pod Security level is
    computed from)."""
    return pod_spec(ROLE, spec, config_map_name, credential_secret, spool_claim=spool)


@dataclass(frozen=True)
class ScheddArgs:
    instance: str  # the pool's name: objects are NAME-schedd, NAME-schedd-spool
    namespace: pulumi.Input[str]
    spec: RoleSpec  # image, CPU, memory, disk, placement
    spool: SpoolSpec
    config: PoolConfig
    credential: Credential  # the schedd token's Secret
    central_manager: pulumi.Resource  # its Deployment: the schedd starts once it is Available


class Schedd(Role):
    """The schedd's volume and Deployment."""

    deployment_name: pulumi.Output[str]

    def __init__(self, name: str, args: ScheddArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("Schedd", name, opts)
        instance, namespace = args.instance, args.namespace
        claim = register_spool_claim(instance, ROLE, namespace, args.spool, self)
        deployment = register_daemon(
            instance, namespace, ROLE, pod(args.spec, args.config.config_map.metadata.name,
                                           args.credential.secret.metadata.name, claim.metadata.name),
            1, args.config, args.credential, [args.central_manager, claim], self)
        self.deployment_name = deployment.metadata.name
        self.register_outputs({"deployment_name": self.deployment_name})
