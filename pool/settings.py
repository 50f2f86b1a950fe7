"""Every stack-config key, declared once: its name, type, default, rule and description.

The stack-config loader (pool/stack_config.py) reads and checks exactly these keys;
HTCondorPoolArgs (pool/args.py) has one field per key, with the key's default, and checks
each with the key's rule; Pulumi.yaml's `config:` block and README's config table are
tested against these declarations (tests/test_settings.py), and README's table is printed
by `python -m pool.settings`. A new key costs one entry here and its field.

A rule takes the name to report (the config key, or the argument's field) and a value as
either side gives it (stack config's text, or a Python value) and returns the value as the
program uses it, or raises PoolConfigError naming the key, the value and what is allowed.
"""

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from . import placement as placement_rules
from . import validation
from .defaults import (
    METRICS_PORT, DEFAULT_IMAGES, DEFAULT_RESOURCES, MIN_WORKER_GRACE_SECONDS, RESOURCE_MINIMUMS, ROLES, SPOOL_ACCESS_MODES, UPDATE_INTERVAL_RANGE,
    UPDATE_INTERVAL_SECONDS,
)
from .condor_config import SLOT_DISK_PERCENT
from .errors import PoolConfigError
from .defaults import IDLE_SHUTDOWN_RANGE, IDLE_SHUTDOWN_SECONDS
from .worker_pools import check_max_workers, idle_shutdown, max_workers
from .worker_pools import worker_pools as worker_pools_rule

Rule = Callable[[str, object], object]


@dataclass(frozen=True)
class Setting:
    key: str  # as `pulumi config set KEY` spells it
    type: str  # Pulumi.yaml's config type (string, integer, boolean, array), or object
    default: object  # the value when unset, as the program uses it
    rule: Rule
    description: str  # Markdown, for README and Pulumi.yaml alike
    shown_default: str | None = None  # how the docs show the default, where not as JSON

    @property
    def field(self) -> str:
        """The HTCondorPoolArgs field: the key in snake_case."""
        return re.sub(r"(?<!^)([A-Z])", r"_\1", self.key).lower()

    def decode(self, name: str, raw: str) -> object:
        """Stack config's text as the rule takes it: objects and arrays are JSON. Text that
        is not JSON goes to the rule as it is, which refuses it, saying what it takes."""
        if self.type not in ("object", "array"):
            return raw
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw

    def shown(self) -> str:
        if self.shown_default is not None:
            return self.shown_default
        if self.default is None:
            return "(empty)"
        return f"`{json.dumps(self.default) if not isinstance(self.default, str) else self.default}`"


# ---- adapters from stack config's text to the values the rules check ----------------------
def boolean(name: str, value: object) -> bool:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, bool):
        return value
    raise PoolConfigError(name, value, "true or false")


def optional(check: Rule) -> Rule:
    """Empty or unset is None (e.g. the cluster's default storage class)."""
    return lambda name, value: None if value in (None, "") else check(name, value)


def cidrs(name: str, value: object, check: Rule = validation.cidr) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):  # text that is not a JSON list, too
        raise PoolConfigError(name, value, 'a list of CIDRs, e.g. ["192.0.2.0/24"]')
    return tuple(check(f"{name}[{index}]", cidr) for index, cidr in enumerate(value))


def per_role_images(name: str, value: object) -> dict[str, str]:
    given = validation.known_keys(name, {} if value is None else value, ROLES)
    return {role: validation.pinned_image(f"{name}.{role}", given.get(role, DEFAULT_IMAGES[role])) for role in ROLES}


def per_role_resources(name: str, value: object) -> dict[str, dict[str, str]]:
    given = validation.known_keys(name, {} if value is None else value, ROLES)
    return {role: resources(f"{name}.{role}", given.get(role, {}), DEFAULT_RESOURCES[role]) for role in ROLES}


def resources(name: str, value: object, defaults: dict[str, str]) -> dict[str, str]:
    given = validation.known_keys(name, value, tuple(RESOURCE_MINIMUMS))
    return {key: validation.quantity(f"{name}.{key}", validation.config_text(given.get(key, defaults[key])), *minimum)
            for key, minimum in RESOURCE_MINIMUMS.items()}


def per_role_placement(name: str, value: object) -> dict[str, dict]:
    given = validation.known_keys(name, {} if value is None else value, ROLES)
    return {role: placement_rules.placement(f"{name}.{role}", given.get(role, {})) for role in ROLES}


low, high = UPDATE_INTERVAL_RANGE
SETTINGS: tuple[Setting, ...] = (
    Setting("name", "string", "htcondor", validation.component_name,
            "Component name; objects are named `NAME-central-manager`, `NAME-schedd`, `NAME-worker`, "
            "`NAME-config`, `NAME-pool-password`, so two pools can share a namespace. DNS-1123 label of at "
            f"most {validation.COMPONENT_NAME_LIMIT} characters, starting with a letter."),
    Setting("namespace", "string", "htcondor", validation.dns1123_label,
            "Namespace of the pool (DNS-1123 label)."),
    Setting("createNamespace", "boolean", True, boolean,
            "`true`: the program creates and owns the namespace. `false`: use an existing one."),
    Setting("workers", "integer", 1, validation.whole_number(validation.worker_count, "a whole number >= 0"),
            "Number of worker pods of the default worker pool (`NAME-worker`), 0 or more."),
    Setting("maxWorkers", "integer", None, max_workers,
            "The most workers the default pool may have, always-on (`workers`) and burst together: at least "
            "`workers`. Above it, an autoscaler (`NAME-autoscaler`) starts burst workers for idle jobs that fit "
            "them, which leave by themselves after `idleShutdownSeconds` without a job (see "
            "[Burst workers](#burst-workers)). Unset: `workers`, no bursting.", shown_default="`workers`"),
    Setting("idleShutdownSeconds", "integer", IDLE_SHUTDOWN_SECONDS, idle_shutdown,
            "How long a burst worker of the default pool stays without a claim before it leaves "
            f"(HTCondor's `STARTD_NOCLAIM_SHUTDOWN`), {IDLE_SHUTDOWN_RANGE[0]} to {IDLE_SHUTDOWN_RANGE[1]}. "
            "Named pools take it unless they set their own."),
    Setting("poolName", "string", "HTCondor on Kubernetes", validation.pool_name,
            "The pool's name (`COLLECTOR_NAME`)."),
    Setting("passwordVersion", "string", "1", validation.password_version,
            "Change it (e.g. `pulumi config set passwordVersion 2`) to rotate the pool password: a new random "
            "password replaces the Secret, the tokens are minted again from it, and every pod rolls onto them. "
            "1 to 63 letters, digits, `.`, `_` or `-`."),
    Setting("workerGracePeriodSeconds", "integer", 600,
            validation.whole_number(lambda n, v: validation.grace_period(n, v, MIN_WORKER_GRACE_SECONDS),
                         f"a whole number of seconds from {MIN_WORKER_GRACE_SECONDS} to 86400"),
            f"How long a worker pod may take to leave (scale-down, eviction, rollout), {MIN_WORKER_GRACE_SECONDS} "
            "to 86400. A preStop hook drains it: running jobs get this long less 30 s to finish "
            "(`MAXJOBRETIREMENTTIME`), then go back to the queue."),
    Setting("scheddSpoolSize", "string", "10Gi",
            lambda n, v: validation.quantity(n, v, Decimal(2**20), "bytes"),
            "Size of the schedd's PersistentVolumeClaim (`NAME-schedd-spool`). It holds the schedd's `SPOOL` "
            "(job queue and history) and the submitters' home directories (`/home`), so queued and running "
            "jobs, their input and their output outlive the schedd pod."),
    Setting("scheddStorageClass", "string", None, optional(validation.dns1123_subdomain),
            "Storage class of that claim; empty uses the cluster's default class.", shown_default="(empty)"),
    Setting("scheddSpoolAccessMode", "string", "ReadWriteOncePod",
            lambda n, v: validation.one_of(n, v, SPOOL_ACCESS_MODES),
            "`ReadWriteOncePod`: one pod at a time mounts the volume, so a replacement schedd starts only once "
            "the old one is gone. `ReadWriteOnce` is for storage drivers without it (Kubernetes before 1.29, "
            "non-CSI volumes); then only the Deployment's `Recreate` strategy keeps two schedds apart, which a "
            "`kubectl delete pod` bypasses."),
    Setting("centralManagerSpoolSize", "string", "1Gi",
            lambda n, v: validation.quantity(n, v, Decimal(2**20), "bytes"),
            "Size of the central manager's PersistentVolumeClaim (`NAME-central-manager-spool`). It holds its "
            "`SPOOL`: the negotiator's accounting of each user's accumulated usage and priority (fair share), so "
            "a replaced central manager (rescheduled, drained, rolled by `pulumi up` or a password rotation) "
            "keeps every user's priority."),
    Setting("centralManagerStorageClass", "string", None, optional(validation.dns1123_subdomain),
            "Storage class of that claim; empty uses the cluster's default class.", shown_default="(empty)"),
    Setting("centralManagerSpoolAccessMode", "string", "ReadWriteOncePod",
            lambda n, v: validation.one_of(n, v, SPOOL_ACCESS_MODES),
            "As `scheddSpoolAccessMode`, for the central manager's claim: with `ReadWriteOncePod` a replacement "
            "negotiator starts only once the old one is gone, so two never write the accounting at once."),
    Setting("updateIntervalSeconds", "integer", UPDATE_INTERVAL_SECONDS,
            validation.whole_number(lambda n, v: validation.whole_number_in(n, v, low, high, "seconds"),
                         f"a whole number of seconds from {low} to {high}"),
            "How often HTCondor's daemons advertise to the collector (`UPDATE_INTERVAL`, `SCHEDD_INTERVAL`, "
            f"`MASTER_UPDATE_INTERVAL`, `NEGOTIATOR_UPDATE_INTERVAL`, `COLLECTOR_UPDATE_INTERVAL`), {low} to {high}. A replaced central manager sees the whole pool again "
            "within about twice this; the collector receives about 2 × workers ÷ this updates per second "
            "(170/s at 1,000 workers). Raise it for pools of thousands of workers: see "
            "[docs/benchmarks.md](docs/benchmarks.md)."),
    Setting("networkPolicy", "boolean", True, boolean,
            "Create the NetworkPolicies `NAME-ingress`, `NAME-egress` and `NAME-worker-egress`: on the pool's "
            "pods, only HTCondor's port (9618/TCP) is reachable, and only from this pool's pods and "
            "`allowedCidrs`; the pool's pods reach out only to HTCondor's port (9618/TCP) and DNS, and jobs "
            "on workers also to `workerEgressCidrs`. `false`: no policy (the cluster's "
            "defaults apply). Needs a CNI that enforces NetworkPolicy (Calico, Cilium, ...); others ignore it."),
    Setting("allowedCidrs", "array", (), cidrs,
            "Networks outside the pool let through the policy to port 9618, e.g. outside submit hosts or "
            "workers: `pulumi config set --path 'allowedCidrs[0]' 192.0.2.0/24`. CIDRs with no host bits set; "
            "needs `networkPolicy: true`.", shown_default="`[]`"),
    Setting("workerEgressCidrs", "array", ("0.0.0.0/0", "::/0"),
            lambda n, v: cidrs(n, v, validation.egress_cidr),
            "Networks jobs on workers may connect to, any port (the egress NetworkPolicy `NAME-worker-egress`). "
            "The link-local ranges (the cloud's instance metadata at 169.254.169.254) are never allowed, and the "
            "private ranges (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7), where a "
            "cluster's pods, Services and API server live, are left out of any broader network listed: list a "
            "private network on its own to let jobs reach it (e.g. a storage server's). `[]`: jobs reach nothing "
            "but the pool. Needs `networkPolicy: true`.", shown_default='`["0.0.0.0/0", "::/0"]`'),
    Setting("metrics", "boolean", True, boolean,
            "Export the pool's metrics for Prometheus: a Deployment and Service `NAME-metrics` serving "
            f"`/metrics` on port {METRICS_PORT}, read from the collector with a token of READ scope only, with "
            "`prometheus.io/scrape` annotations, and the Grafana dashboard in a ConfigMap `NAME-dashboard` "
            "(see [Metrics](#metrics)). `false`: none of these."),
    Setting("metricsAllowedCidrs", "array", ("0.0.0.0/0", "::/0"), cidrs,
            f"Where Prometheus may scrape from: the only networks let through the policy to the exporter's port "
            f"({METRICS_PORT}/TCP), e.g. your monitoring namespace's pod network. The default lets any pod of the "
            "cluster scrape, as a stock Prometheus in its own namespace must. Needs `metrics: true` and "
            "`networkPolicy: true` to differ from the default.", shown_default='`["0.0.0.0/0", "::/0"]`'),
    Setting("metricsServiceMonitor", "boolean", False, boolean,
            "`true`: also create a `ServiceMonitor` (`NAME-metrics`) for clusters that run the Prometheus "
            "Operator (its CRD must be installed). Needs `metrics: true`."),
    Setting("unprivilegedWorkers", "boolean", False, boolean,
            "`true`: workers run as the image's `condor` user with no capability (Pod Security `restricted`), "
            "and every job runs as that one user instead of its submitter (see [docs/security.md](docs/security.md#least-privilege) "
            "for what users give up). `false`: workers start as root, confined, and run each job as its owner."),
    Setting("images", "object", dict(DEFAULT_IMAGES), per_role_images,
            "Image per role: keys `centralManager`, `schedd`, `worker`. Each pinned to a version tag or digest, "
            "not `latest`.", shown_default="see below"),
    Setting("resources", "object", {r: dict(v) for r, v in DEFAULT_RESOURCES.items()}, per_role_resources,
            "`{cpu, memory, disk}` per role (keys `centralManager`, `schedd`, `worker`): Kubernetes quantities "
            "used as both request and limit; `disk` is the container's `ephemeral-storage` and the size limit "
            f"of its HTCondor directories (a worker's slot advertises {SLOT_DISK_PERCENT}% of it as its `Disk`).",
            shown_default="see below"),
    Setting("placement", "object", {role: {} for role in ROLES}, per_role_placement,
            "Where each role's pods may run, per role (keys `centralManager`, `schedd`, `worker`): "
            "`{nodeSelector, tolerations, affinity, priorityClassName}`, as in a pod's spec (see "
            "[docs/worker-pools.md](docs/worker-pools.md)).", shown_default="`{}` (anywhere)"),
    Setting("workerPools", "object", {}, worker_pools_rule,
            "Named worker pools beside the default one: `{NAME: {workers, maxWorkers, idleShutdownSeconds, image, "
            "cpu, memory, disk, gpus, placement}}`, each its own Deployment `NAME-worker-POOL`; unset fields take "
            "the default worker's values, but `maxWorkers`, which is the pool's own `workers` unless set (see "
            "[docs/worker-pools.md](docs/worker-pools.md)).", shown_default="`{}` (none)"),
)

BY_KEY = {setting.key: setting for setting in SETTINGS}
# The settings HTCondorPoolArgs holds: all but the component's name, which HTCondorPool takes.
ARG_SETTINGS = tuple(s for s in SETTINGS if s.key != "name")


def check_together(values: dict[str, object], name: Callable[[str], str]) -> None:
    """The rules that span keys. `values` by key; `name` gives a key's name to report."""
    if values["allowedCidrs"] and not values["networkPolicy"]:
        raise PoolConfigError(name("allowedCidrs"), list(values["allowedCidrs"]),
                              f"empty while {name('networkPolicy')} is false (there is no policy to open)")
    if tuple(values["workerEgressCidrs"]) != BY_KEY["workerEgressCidrs"].default and not values["networkPolicy"]:
        raise PoolConfigError(name("workerEgressCidrs"), list(values["workerEgressCidrs"]),
                              f"the default while {name('networkPolicy')} is false (there is no policy to "
                              "limit jobs' connections)")
    check_max_workers(name("maxWorkers"), values["maxWorkers"], values["workers"], name("workers"))
    for pool, spec in values["workerPools"].items():
        workers = spec.get("workers", values["workers"])
        check_max_workers(f"{name('workerPools')}.{pool}.maxWorkers", spec.get("maxWorkers"), workers,
                          f"{name('workerPools')}.{pool}.workers" if "workers" in spec else name("workers"))
    if values["metricsServiceMonitor"] and not values["metrics"]:
        raise PoolConfigError(name("metricsServiceMonitor"), True,
                              f"false while {name('metrics')} is false (there is no exporter to monitor)")
    if tuple(values["metricsAllowedCidrs"]) != BY_KEY["metricsAllowedCidrs"].default and not (
            values["metrics"] and values["networkPolicy"]):
        raise PoolConfigError(name("metricsAllowedCidrs"), list(values["metricsAllowedCidrs"]),
                              f"the default while {name('metrics')} or {name('networkPolicy')} is false "
                              "(there is no exporter, or no policy, to open)")


def markdown_table() -> str:
    """README's config table."""
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for s in SETTINGS:
        rows.append(f"| `{s.key}` | {s.type} | {s.shown()} | {s.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
