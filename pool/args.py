"""HTCondorPoolArgs: everything an HTCondorPool needs, typed, with defaults and checks.

One field per stack-config key (pool/settings.py declares each: its default and its rule),
so library callers get the same defaults and the same checks, naming the field."""

from collections.abc import Callable
from dataclasses import dataclass, field

from .condor_config import Intervals
from .defaults import DEFAULT_RESOURCES, DRAIN_MARGIN_SECONDS
from .settings import ARG_SETTINGS, BY_KEY, SETTINGS, check_together
from .worker_pools import DEFAULT_POOL, WorkerPoolSpec, check_names


def _default(key: str):
    value = BY_KEY[key].default
    return field(default_factory=lambda: _copy(value)) if isinstance(value, dict) else value


def _copy(value):
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


@dataclass(frozen=True)
class RoleSpec:
    """What one role's containers run, may use, and where they may run. CPU and memory are
    both the request and the limit (Guaranteed QoS), so a worker's slot can advertise
    exactly what it gets."""

    image: str
    cpu: str
    memory: str
    placement: dict = field(default_factory=dict)
    gpus: int = 0
    disk: str = DEFAULT_RESOURCES["worker"]["disk"]


@dataclass(frozen=True)
class HTCondorPoolArgs:
    """Inputs of an HTCondorPool. Construction validates (and fills in partial per-role
    values from the defaults), so a bad value fails before any resource is registered."""

    namespace: str = _default("namespace")
    # False: use an existing namespace instead of creating (and owning) it.
    create_namespace: bool = _default("createNamespace")
    workers: int = _default("workers")
    # Bursting: the most workers of the default pool (None: `workers`, no bursting), and how
    # long a burst worker stays without a claim (named pools take it unless they set theirs).
    max_workers: int | None = _default("maxWorkers")
    idle_shutdown_seconds: int = _default("idleShutdownSeconds")
    pool_name: str = _default("poolName")
    # Changing it draws a new pool password (a keeper of the RandomPassword): every pod
    # rolls onto the new Secret and the tokens minted from it.
    password_version: str = _default("passwordVersion")
    # How long a worker pod may take to leave (scale-down, eviction, rollout): its running
    # jobs finish within this, less DRAIN_MARGIN_SECONDS, or go back to the queue.
    worker_grace_period_seconds: int = _default("workerGracePeriodSeconds")
    # The schedd's PersistentVolumeClaim (its SPOOL, i.e. the job queue, and the submitters'
    # home directories): size, storage class (None: the cluster's default) and access mode.
    schedd_spool_size: str = _default("scheddSpoolSize")
    schedd_storage_class: str | None = _default("scheddStorageClass")
    schedd_spool_access_mode: str = _default("scheddSpoolAccessMode")
    # The central manager's PersistentVolumeClaim (its SPOOL: the negotiator's accounting of
    # users' usage and priorities, i.e. fair share): size, storage class and access mode.
    central_manager_spool_size: str = _default("centralManagerSpoolSize")
    central_manager_storage_class: str | None = _default("centralManagerStorageClass")
    central_manager_spool_access_mode: str = _default("centralManagerSpoolAccessMode")
    # How often daemons advertise to the collector: a replaced central manager sees the
    # pool again within about twice this, at a load of about 2 * workers / this updates/s.
    update_interval_seconds: int = _default("updateIntervalSeconds")
    # A NetworkPolicy: only this pool's pods, and hosts in these CIDRs (outside submit hosts
    # or workers), reach HTCondor's port on the pool's pods. False: no policy at all.
    network_policy: bool = _default("networkPolicy")
    allowed_cidrs: tuple[str, ...] = _default("allowedCidrs")
    # Where jobs on workers may connect (any port), never link-local (instance metadata);
    # private ranges left out of broader networks (pool/validation.py).
    worker_egress_cidrs: tuple[str, ...] = _default("workerEgressCidrs")
    # The metrics exporter (NAME-metrics): on by default; who may scrape it; a ServiceMonitor.
    metrics: bool = _default("metrics")
    metrics_allowed_cidrs: tuple[str, ...] = _default("metricsAllowedCidrs")
    metrics_service_monitor: bool = _default("metricsServiceMonitor")
    # Workers as the image's condor user with no capability (Pod Security `restricted`):
    # every job then runs as that one user instead of its owner (pool/security.py).
    unprivileged_workers: bool = _default("unprivilegedWorkers")
    # Per role (keys as ROLES): image, {cpu, memory}, placement. Partial values are filled in.
    images: dict[str, str] = _default("images")
    resources: dict[str, dict[str, str]] = _default("resources")
    placement: dict[str, dict] = _default("placement")
    # Named worker pools beside the default one: {name: {workers, image, cpu, memory, gpus,
    # placement}}, unset fields following the default worker (pool/worker_pools.py).
    worker_pools: dict[str, dict] = _default("workerPools")

    def __post_init__(self) -> None:
        for setting in ARG_SETTINGS:
            object.__setattr__(self, setting.field, setting.rule(setting.field, getattr(self, setting.field)))
        check_together({s.key: getattr(self, s.field) for s in ARG_SETTINGS}, lambda key: BY_KEY[key].field)

    @property
    def intervals(self) -> Intervals:
        return Intervals(update=self.update_interval_seconds)

    @property
    def job_retirement_seconds(self) -> int:
        return self.worker_grace_period_seconds - DRAIN_MARGIN_SECONDS

    def role(self, role: str) -> RoleSpec:
        """The spec of a role named as in ROLES (the worker's: the default pool's)."""
        return RoleSpec(self.images[role], self.resources[role]["cpu"], self.resources[role]["memory"],
                        self.placement[role], disk=self.resources[role]["disk"])

    def pools(self) -> list[WorkerPoolSpec]:
        """Every worker pool, the default one first, with unset fields the default worker's."""
        worker = self.role("worker")
        pools = [WorkerPoolSpec(
            DEFAULT_POOL, self.workers, worker.image, worker.cpu, worker.memory, worker.disk, 0, worker.placement,
            max_workers=self.workers if self.max_workers is None else self.max_workers,
            idle_shutdown_seconds=self.idle_shutdown_seconds)]
        for name, spec in self.worker_pools.items():
            workers = spec.get("workers", self.workers)
            pools.append(WorkerPoolSpec(
                name, workers, spec.get("image", worker.image), spec.get("cpu", worker.cpu),
                spec.get("memory", worker.memory), spec.get("disk", worker.disk), spec.get("gpus", 0),
                {**worker.placement, **spec.get("placement", {})}, max_workers=spec.get("maxWorkers", workers),
                idle_shutdown_seconds=spec.get("idleShutdownSeconds", self.idle_shutdown_seconds)))
        return pools

    @property
    def bursts(self) -> bool:
        """Some worker pool may start burst workers: the pool runs an autoscaler."""
        return any(pool.bursts for pool in self.pools())


def pool_args_by_key(given: dict[str, object], name: Callable[[str], str]) -> tuple[str, HTCondorPoolArgs]:
    """The component's name and its arguments from values by stack-config key (`name` among
    them), as stack config and the package's inputs give them: each given value checked by
    its key's rule, which names it as `name(key)` says, the others their defaults; then the
    rules across keys. So both report bad input alike, each in its own names."""
    values = {s.key: s.rule(name(s.key), given[s.key]) if s.key in given else s.default for s in SETTINGS}
    check_together(values, name)
    component = values.pop("name")
    check_names(component, values["workerPools"], name("name"), name("workerPools"))
    return component, HTCondorPoolArgs(**{BY_KEY[key].field: value for key, value in values.items()})
