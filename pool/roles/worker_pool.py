"""WorkerPool: one worker pool's workers, a Deployment NAME-worker (the default pool, as the
walkthrough named it) or NAME-worker-POOL (a named pool, pool/worker_pools.py), each pod
one partitionable slot of the pool's size that advertises its WorkerPool. A Deployment per
pool, so scaling one leaves the others be. Workers drain before they leave (a preStop hook,
within workerGracePeriodSeconds), mount the workers' token, and start once the central
manager is Available.

A pool that may burst (maxWorkers above workers) has nothing more of its own: the
autoscaler (Autoscaler) reads this Deployment's pod template for every burst worker it
creates, and owns its burst Jobs through it."""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from ..args import RoleSpec
from ..worker_pools import WorkerPoolSpec
from .pods import pod_spec, register_daemon
from .shared import Credential, PoolConfig, Role

ROLE = "worker"


def pod(pool: WorkerPoolSpec, grace_seconds: int, unprivileged: bool, config_map_name="config",
        credential_secret="credential") -> dict:
    """A worker's pod of `pool` (with placeholder names: what the namespace's Pod Security
    level is computed from)."""
    spec = RoleSpec(pool.image, pool.cpu, pool.memory, pool.placement, pool.gpus, pool.disk)
    return pod_spec(ROLE, spec, config_map_name, credential_secret, grace_seconds,
                    unprivileged_workers=unprivileged, pool=pool.name)


@dataclass(frozen=True)
class WorkerPoolArgs:
    instance: str  # the pool's name: the Deployment is NAME-worker or NAME-worker-POOL
    namespace: pulumi.Input[str]
    pool: WorkerPoolSpec  # its name, workers, image, size, GPUs, placement, bursting
    # How long a worker may take to leave: its running jobs get this less a margin to finish.
    grace_period_seconds: int
    # Workers as the image's condor user with no capability, every job as that user.
    unprivileged: bool
    config: PoolConfig
    credential: Credential  # the workers' token's Secret
    central_manager: pulumi.Resource  # its Deployment: workers start once it is Available


class WorkerPool(Role):
    """A worker pool's Deployment."""

    # The autoscaler reads its pod template, and is created after it.
    deployment: k8s.apps.v1.Deployment
    deployment_name: pulumi.Output[str]

    def __init__(self, name: str, args: WorkerPoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("WorkerPool", name, opts)
        pool = args.pool
        self.deployment = register_daemon(
            args.instance, args.namespace, ROLE,
            pod(pool, args.grace_period_seconds, args.unprivileged, args.config.config_map.metadata.name,
                args.credential.secret.metadata.name),
            pool.workers, args.config, args.credential, [args.central_manager], self, pool=pool.name, gpus=pool.gpus)
        self.deployment_name = self.deployment.metadata.name
        self.register_outputs({"deployment_name": self.deployment_name})
