"""HTCondorPoolArgs: everything an HTCondorPool needs, typed, with defaults and checks."""

from dataclasses import dataclass, field
from decimal import Decimal

from . import validation
from .condor_config import Intervals
from .errors import PoolConfigError

# The official HTCondor images, one per role, pinned to one release of the LTS series 25.0
# (HTCondor's docs/version-history/lts-versions-25-0.rst and feature-versions-26-x.rst:
# 25.0.15, October 22, 2026). Tags are `<version>-el9` (build/docker/services/build-images),
# published for the newest release of each series.
HTCONDOR_IMAGE_TAG = "25.0.15-el9"

# A leaving worker's running jobs get its grace period less this long to finish; the rest
# is for ending the ones that do not, handing them back to the queue, and shutting down.
DRAIN_MARGIN_SECONDS = 30
MIN_WORKER_GRACE_SECONDS = 2 * DRAIN_MARGIN_SECONDS

# How the schedd's volume may be attached. ReadWriteOncePod (the default) lets one pod at a
# time mount it, so a replacement schedd starts only once the old one is gone, whatever
# deleted it; ReadWriteOnce is for storage drivers without it (one node at a time only).
SPOOL_ACCESS_MODES = ("ReadWriteOncePod", "ReadWriteOnce")

# How often daemons may be told to advertise, in seconds (updateIntervalSeconds).
UPDATE_INTERVAL_RANGE = (5, 3600)

# Roles as stack config and HTCondorPoolArgs spell them, in creation order.
ROLES = ("centralManager", "schedd", "worker")


@dataclass(frozen=True)
class RoleSpec:
    """What one role's containers run and may use. CPU and memory are both the request and
    the limit (Guaranteed QoS), so a worker's slot can advertise exactly what it gets."""

    image: str
    cpu: str
    memory: str

    def validate(self, prefix: str, image_key: str | None = None) -> None:
        validation.pinned_image(image_key or f"{prefix}.image", self.image)
        validation.quantity(f"{prefix}.cpu", self.cpu, Decimal("0.001"), "CPU")
        validation.quantity(f"{prefix}.memory", self.memory, Decimal(64 * 2**20), "bytes")


DEFAULT_ROLE_SPECS = {
    "centralManager": RoleSpec(f"htcondor/cm:{HTCONDOR_IMAGE_TAG}", "500m", "512Mi"),
    "schedd": RoleSpec(f"htcondor/submit:{HTCONDOR_IMAGE_TAG}", "500m", "1Gi"),
    "worker": RoleSpec(f"htcondor/execute:{HTCONDOR_IMAGE_TAG}", "1", "2Gi"),
}


@dataclass(frozen=True)
class HTCondorPoolArgs:
    """Inputs of an HTCondorPool. Construction validates, so a bad value fails before any
    resource is registered."""

    namespace: str = "htcondor"
    # False: use an existing namespace instead of creating (and owning) it.
    create_namespace: bool = True
    workers: int = 1
    pool_name: str = "HTCondor on Kubernetes"
    central_manager: RoleSpec = field(default_factory=lambda: DEFAULT_ROLE_SPECS["centralManager"])
    schedd: RoleSpec = field(default_factory=lambda: DEFAULT_ROLE_SPECS["schedd"])
    worker: RoleSpec = field(default_factory=lambda: DEFAULT_ROLE_SPECS["worker"])
    # How long a worker pod may take to leave (scale-down, eviction, rollout): its running
    # jobs finish within this, less DRAIN_MARGIN_SECONDS, or go back to the queue.
    worker_grace_period_seconds: int = 600
    # Changing it draws a new pool password (a keeper of the RandomPassword): every pod
    # rolls onto the new Secret.
    password_version: str = "1"
    # The schedd's PersistentVolumeClaim (its SPOOL, i.e. the job queue, and the submitters'
    # home directories): size, storage class (None: the cluster's default) and access mode.
    schedd_spool_size: str = "10Gi"
    schedd_storage_class: str | None = None
    schedd_spool_access_mode: str = "ReadWriteOncePod"
    # A NetworkPolicy: only this pool's pods, and hosts in these CIDRs (outside submit hosts
    # or workers), reach HTCondor's port on the pool's pods. False: no policy at all.
    # How often daemons advertise to the collector: a replaced central manager sees the
    # pool again within about twice this, at a load of about 2 * workers / this updates/s.
    update_interval_seconds: int = Intervals().update
    network_policy: bool = True
    allowed_cidrs: tuple[str, ...] = ()
    # Workers as the image's condor user with no capability (Pod Security `restricted`):
    # every job then runs as that one user instead of its owner (pool/security.py).
    unprivileged_workers: bool = False

    def __post_init__(self) -> None:
        validation.dns1123_label("namespace", self.namespace)
        validation.worker_count("workers", self.workers)
        validation.pool_name("pool_name", self.pool_name)
        validation.password_version("password_version", self.password_version)
        validation.grace_period("worker_grace_period_seconds", self.worker_grace_period_seconds,
                                MIN_WORKER_GRACE_SECONDS)
        validation.quantity("schedd_spool_size", self.schedd_spool_size, Decimal(2**20), "bytes")
        if self.schedd_storage_class is not None:
            validation.dns1123_subdomain("schedd_storage_class", self.schedd_storage_class)
        validation.one_of("schedd_spool_access_mode", self.schedd_spool_access_mode, SPOOL_ACCESS_MODES)
        validation.whole_number_in("update_interval_seconds", self.update_interval_seconds,
                                   *UPDATE_INTERVAL_RANGE, "seconds")
        for index, cidr in enumerate(self.allowed_cidrs):
            validation.cidr(f"allowed_cidrs[{index}]", cidr)
        if self.allowed_cidrs and not self.network_policy:
            raise PoolConfigError("allowed_cidrs", list(self.allowed_cidrs),
                                  "empty while network_policy is false (there is no policy to open)")
        if not isinstance(self.unprivileged_workers, bool):
            raise PoolConfigError("unprivileged_workers", self.unprivileged_workers, "true or false")
        for name in ("central_manager", "schedd", "worker"):
            getattr(self, name).validate(name)

    @property
    def intervals(self) -> Intervals:
        return Intervals(update=self.update_interval_seconds)

    @property
    def job_retirement_seconds(self) -> int:
        return self.worker_grace_period_seconds - DRAIN_MARGIN_SECONDS

    def role(self, role: str) -> RoleSpec:
        """The spec of a role named as in ROLES."""
        return {"centralManager": self.central_manager, "schedd": self.schedd,
                "worker": self.worker}[role]
