"""Named worker pools beside the default one (`workerPools`): each its own Deployment
`NAME-worker-POOL`, with the default worker's drain, probes and least privilege, and its
slots advertising `WorkerPool = "POOL"` so that jobs can pick it."""

from dataclasses import dataclass

from . import placement as placement_rules
from . import validation
from .defaults import IDLE_SHUTDOWN_RANGE, RESOURCE_MINIMUMS
from .errors import PoolConfigError

POOL_KEYS = ("workers", "maxWorkers", "idleShutdownSeconds", "image", "cpu", "memory", "disk", "gpus", "placement")
# The default pool's WorkerPool, which no named pool may take.
DEFAULT_POOL = "default"
# Kubernetes' resource name for NVIDIA GPUs (the NVIDIA device plugin's).
GPU_RESOURCE = "nvidia.com/gpu"
# A Deployment's pods are named DEPLOYMENT-<hash, up to 10>-<5>, and a pod's hostname (which
# HTCondor names its daemons and slots after) is its name cut to 63 characters: beyond this
# length the cut takes the random suffix, and the pods of one Deployment share a hostname.
DEPLOYMENT_NAME_LIMIT = 63 - len("-0123456789-abcde")


@dataclass(frozen=True)
class WorkerPoolSpec:
    """A worker pool as rendered: every field resolved against the default worker's."""

    name: str  # DEFAULT_POOL for the default pool
    workers: int
    image: str
    cpu: str
    memory: str
    disk: str
    gpus: int
    placement: dict
    max_workers: int = 0  # always-on and burst together; at most `workers`: no bursting
    idle_shutdown_seconds: int = 300

    @property
    def bursts(self) -> bool:
        return self.max_workers > self.workers


_count = validation.whole_number(validation.worker_count, "a whole number >= 0")
_low, _high = IDLE_SHUTDOWN_RANGE
idle_shutdown = validation.whole_number(
    lambda key, value: validation.whole_number_in(key, value, _low, _high, "seconds"),
    f"a whole number of seconds from {_low} to {_high}")


def max_workers(key: str, value: object) -> int | None:
    """Unset (None, or empty text): the pool's `workers`, i.e. no bursting."""
    return None if value in (None, "") else _count(key, value)


def check_max_workers(key: str, value: int | None, workers: int, workers_key: str) -> None:
    if value is not None and value < workers:
        raise PoolConfigError(key, value, f"a whole number >= {workers_key} ({workers}): the most workers the "
                                          "pool may have, always-on and burst together")


def pool_spec(name: str, value: object) -> dict:
    """One pool's fields, checked; only those given (the rest follow the default worker)."""
    given = validation.known_keys(name, {} if value is None else value, POOL_KEYS)
    checked: dict = {}
    if "workers" in given:
        checked["workers"] = _count(f"{name}.workers", given["workers"])
    if "gpus" in given:
        checked["gpus"] = _count(f"{name}.gpus", given["gpus"])
    if "maxWorkers" in given:
        checked["maxWorkers"] = _count(f"{name}.maxWorkers", given["maxWorkers"])
    if "idleShutdownSeconds" in given:
        checked["idleShutdownSeconds"] = idle_shutdown(f"{name}.idleShutdownSeconds", given["idleShutdownSeconds"])
    if "image" in given:
        checked["image"] = validation.pinned_image(f"{name}.image", given["image"])
    for key, minimum in RESOURCE_MINIMUMS.items():
        if key in given:
            checked[key] = validation.quantity(f"{name}.{key}", validation.config_text(given[key]), *minimum)
    if "placement" in given:
        checked["placement"] = placement_rules.placement(f"{name}.placement", given["placement"])
    return checked


def worker_pools(name: str, value: object) -> dict[str, dict]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PoolConfigError(name, value, "an object of worker pools by name, e.g. "
                                           '{"bigmem": {"workers": 2, "memory": "64Gi"}}')
    pools = {}
    for pool, spec in value.items():
        validation.dns1123_label(f"{name}.{pool}", pool)
        if pool == DEFAULT_POOL:
            raise PoolConfigError(f"{name}.{pool}", spec, f"a pool name other than {DEFAULT_POOL!r} "
                                                          "(the default pool's: set `workers` for it)")
        pools[pool] = pool_spec(f"{name}.{pool}", spec)
    return pools


def deployment_name(component: str, pool: str) -> str:
    return f"{component}-worker" if pool == DEFAULT_POOL else f"{component}-worker-{pool}"


def check_names(component: str, pools, component_key: str, pools_key: str) -> None:
    """Every worker Deployment's name short enough for its pods' hostnames to stay unique."""
    for pool in [DEFAULT_POOL, *pools]:
        name = deployment_name(component, pool)
        if len(name) > DEPLOYMENT_NAME_LIMIT:
            key, value = (component_key, component) if pool == DEFAULT_POOL else (f"{pools_key}.{pool}", pool)
            raise PoolConfigError(
                key, value, f"a shorter name: the Deployment {name!r} would have {len(name)} characters, and "
                f"worker Deployments may have at most {DEPLOYMENT_NAME_LIMIT} (its pods' hostnames, which "
                "HTCondor names slots after, are cut to 63 characters)")
