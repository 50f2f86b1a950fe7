"""Stack config (`htcondor-pool:*`) into (component name, HTCondorPoolArgs).

Every value is checked here, naming the config key, before any resource is registered.
Defaults live in code because the Pulumi SDK never reads Pulumi.yaml's declared defaults;
a unit test keeps the two in step.
"""

import json
from decimal import Decimal

import pulumi

from . import validation
from .args import (
    DEFAULT_ROLE_SPECS, MIN_WORKER_GRACE_SECONDS, ROLES, SPOOL_ACCESS_MODES, UPDATE_INTERVAL_RANGE,
    HTCondorPoolArgs, RoleSpec,
)
from .errors import PoolConfigError

PROJECT = "htcondor-pool"
DEFAULT_NAME = "htcondor"

# Every key this program reads, so a typo ("worker" for "workers") fails loudly instead of
# being ignored.
KEYS = ("name", "namespace", "createNamespace", "workers", "poolName", "images", "resources",
        "workerGracePeriodSeconds", "passwordVersion", "scheddSpoolSize", "scheddStorageClass",
        "scheddSpoolAccessMode", "networkPolicy", "allowedCidrs", "updateIntervalSeconds",
        "unprivilegedWorkers")


def load_pool_args(config: pulumi.Config | None = None) -> tuple[str, HTCondorPoolArgs]:
    config = config or pulumi.Config(PROJECT)
    _reject_unknown_keys()
    key = lambda k: f"{PROJECT}:{k}"  # noqa: E731 - the name every error message uses
    defaults = HTCondorPoolArgs()

    name = validation.component_name(key("name"), config.get("name") or DEFAULT_NAME)
    namespace = validation.dns1123_label(key("namespace"), config.get("namespace") or defaults.namespace)
    create_namespace = _boolean(key("createNamespace"), config.get("createNamespace"), defaults.create_namespace)
    workers = validation.worker_count(key("workers"), _integer(key("workers"), config.get("workers"), defaults.workers))
    pool_name = validation.pool_name(key("poolName"), config.get("poolName") or defaults.pool_name)
    password_version = validation.password_version(
        key("passwordVersion"), config.get("passwordVersion") or defaults.password_version)
    worker_grace = validation.grace_period(
        key("workerGracePeriodSeconds"),
        _integer(key("workerGracePeriodSeconds"), config.get("workerGracePeriodSeconds"),
                 defaults.worker_grace_period_seconds, f"a whole number of seconds from {MIN_WORKER_GRACE_SECONDS} to 86400"),
        MIN_WORKER_GRACE_SECONDS)
    spool_size = validation.quantity(key("scheddSpoolSize"), config.get("scheddSpoolSize") or defaults.schedd_spool_size,
                                     Decimal(2**20), "bytes")
    storage_class = config.get("scheddStorageClass") or defaults.schedd_storage_class
    if storage_class is not None:
        validation.dns1123_subdomain(key("scheddStorageClass"), storage_class)
    access_mode = validation.one_of(key("scheddSpoolAccessMode"),
                                    config.get("scheddSpoolAccessMode") or defaults.schedd_spool_access_mode,
                                    SPOOL_ACCESS_MODES)
    low, high = UPDATE_INTERVAL_RANGE
    update_interval = validation.whole_number_in(
        key("updateIntervalSeconds"),
        _integer(key("updateIntervalSeconds"), config.get("updateIntervalSeconds"),
                 defaults.update_interval_seconds, f"a whole number of seconds from {low} to {high}"),
        low, high, "seconds")
    network_policy = _boolean(key("networkPolicy"), config.get("networkPolicy"), defaults.network_policy)
    unprivileged_workers = _boolean(key("unprivilegedWorkers"), config.get("unprivilegedWorkers"),
                                    defaults.unprivileged_workers)
    list_of_cidrs = 'a list of CIDRs, e.g. ["192.0.2.0/24"]'
    cidrs = _object(key("allowedCidrs"), config.get("allowedCidrs"), default=[], allowed=list_of_cidrs)
    if not isinstance(cidrs, list):
        raise PoolConfigError(key("allowedCidrs"), cidrs, list_of_cidrs)
    for index, cidr in enumerate(cidrs):
        validation.cidr(key(f"allowedCidrs[{index}]"), cidr)
    if cidrs and not network_policy:
        raise PoolConfigError(key("allowedCidrs"), cidrs, f"empty while {key('networkPolicy')} is false "
                                                          "(there is no policy to open)")

    images = validation.known_keys(key("images"), _object(key("images"), config.get("images")), ROLES)
    resources = validation.known_keys(key("resources"), _object(key("resources"), config.get("resources")), ROLES)
    specs = {}
    for role in ROLES:
        default = DEFAULT_ROLE_SPECS[role]
        res = validation.known_keys(key(f"resources.{role}"), resources.get(role, {}), ("cpu", "memory"))
        spec = RoleSpec(
            image=images.get(role, default.image),
            cpu=_text(res.get("cpu", default.cpu)),
            memory=_text(res.get("memory", default.memory)),
        )
        spec.validate(key(f"resources.{role}"), image_key=key(f"images.{role}"))
        specs[role] = spec

    return name, HTCondorPoolArgs(
        namespace=namespace, create_namespace=create_namespace, workers=workers,
        pool_name=pool_name, central_manager=specs["centralManager"],
        schedd=specs["schedd"], worker=specs["worker"], worker_grace_period_seconds=worker_grace,
        password_version=password_version, schedd_spool_size=spool_size,
        schedd_storage_class=storage_class, schedd_spool_access_mode=access_mode,
        network_policy=network_policy, allowed_cidrs=tuple(cidrs), update_interval_seconds=update_interval,
        unprivileged_workers=unprivileged_workers,
    )


def _reject_unknown_keys() -> None:
    prefix = f"{PROJECT}:"
    present = set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.config.get_config_env())
    for full_key in sorted(present):
        if full_key.startswith(prefix) and full_key[len(prefix):] not in KEYS:
            raise PoolConfigError(full_key, pulumi.runtime.config.get_config(full_key),
                                  f"a known key: one of {', '.join(KEYS)}")


def _text(value: object) -> object:
    # `pulumi config set --path resources.worker.cpu 2` stores the number 2: accept it as "2".
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _integer(key: str, raw: str | None, default: int, allowed: str = "a whole number >= 0") -> object:
    if raw is None:
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise PoolConfigError(key, raw, allowed) from None


def _boolean(key: str, raw: str | None, default: bool) -> bool:
    if raw is None:
        return default
    if raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise PoolConfigError(key, raw, "true or false")


def _object(key: str, raw: str | None, default: object = None,
            allowed: str = "an object (set it with `pulumi config set --path`)") -> object:
    if raw is None:
        return {} if default is None else default
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise PoolConfigError(key, raw, allowed) from None
