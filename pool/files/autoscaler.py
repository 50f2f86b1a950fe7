"""htcondor-pool autoscaler: burst workers for idle jobs (stack config `maxWorkers`).

Runs in the pool's own image (Python's standard library and HTCondor's bindings only),
shipped in the pool's ConfigMap. Every few seconds it:

1. reads the idle jobs from every schedd, with a token of READ scope only;
2. for each worker pool that may burst, decides which idle jobs a worker of that pool could
   run, with HTCondor's own ClassAd matching (classad2) of each job against the slot such a
   worker advertises, and its requests against the slot's size;
3. subtracts what is already coming: burst workers whose startd has not advertised yet
   (Pending or starting), and what the pool's unclaimed slots have left;
4. packs the rest into workers of the pool's size (first fit, largest first) and creates
   that many burst workers, never more than the pool's `maxWorkers` with every worker
   counted (always-on and burst alike).

A burst worker is a Kubernetes Job whose pod is the pool's own worker Deployment's pod
template, read from the API, with `restartPolicy: Never` and HTCondor's
STARTD_NOCLAIM_SHUTDOWN: its startd leaves after that long without a claim, its master
and container then exit 0, and the Job completes. Nothing here ever deletes a pod. It keeps
no state: a restarted autoscaler counts again from the cluster.

What it may create is confined by the pool's admission policy (pool/burst_admission.py):
a Job of its that is not a burst worker (one that mounts another Secret, say) is refused.
Before it creates a burst worker it makes sure of that, with a dry run of the same Job
mounting its own token's Secret, which no worker holds: should the API server admit it
(the policy deleted, or not enforced), it creates nothing and says why, as a failed
decision.

With the pool's metrics on, it serves its decisions for Prometheus on /metrics: per pool,
the idle jobs that fit, the burst workers wanted and those starting and running.
"""

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace

from pod_token import install_token  # shipped beside this file
from prometheus_text import Metric, Server, render

POOLS_ENV = "HTCONDOR_POOL_BURST_POOLS"  # JSON: the pools that may burst (PoolShape fields)
INSTANCE_ENV = "HTCONDOR_POOL_INSTANCE"
NAMESPACE_ENV = "HTCONDOR_POOL_NAMESPACE"
INTERVAL_ENV = "HTCONDOR_POOL_AUTOSCALER_INTERVAL"
METRICS_PORT_ENV = "HTCONDOR_POOL_METRICS_PORT"  # set when the pool's metrics are on
# The admission policy that confines what it creates, and the Secret its dry-run check
# mounts (its own token's), which that policy must refuse.
ADMISSION_POLICY_ENV = "HTCONDOR_POOL_ADMISSION_POLICY"
ADMISSION_CHECK_SECRET_ENV = "HTCONDOR_POOL_ADMISSION_CHECK_SECRET"
DEFAULT_INTERVAL_SECONDS = 5.0
# Touched after every decision, taken or failed: the liveness probe (`--alive`) sees the
# loop turning, so a hung autoscaler is restarted.
HEARTBEAT = "/tmp/autoscaler-alive"
HEARTBEAT_SECONDS = 120
# Labels of burst workers' Jobs and pods: the pool's instance, bursting, the worker pool.
INSTANCE_LABEL = "app.kubernetes.io/instance"
BURST_LABEL = "htcondor-pool/burst"
WORKER_POOL_LABEL = "htcondor-pool/worker-pool"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
CONTAINER = "htcondor"
# A finished burst Job (and its pod, with its logs) stays this long, then Kubernetes
# deletes it (ttlSecondsAfterFinished).
FINISHED_JOB_SECONDS = 60
# A pod's hostname, which HTCondor names its slots' Machine after, is its name cut to this.
HOSTNAME_LIMIT = 63
# How a partitionable slot carves a job's requests (HTCondor's MODIFY_REQUEST_EXPR_*
# defaults); the pod reads its own configuration's, the tests give these.
REQUEST_MODIFIERS = {
    "RequestCpus": "quantize(RequestCpus, {1})",
    "RequestMemory": "quantize(RequestMemory, {128})",
    "RequestDisk": "quantize(RequestDisk, {1024})",
}
# What a slot of any worker advertises beside its size, from the image's own configuration.
MACHINE_PARAMS = {"Arch": "ARCH", "OpSys": "OPSYS", "OpSysAndVer": "OPSYSANDVER",
                  "OpSysMajorVer": "OPSYSMAJORVER", "OpSysName": "OPSYSNAME",
                  "FileSystemDomain": "FILESYSTEM_DOMAIN", "UidDomain": "UID_DOMAIN"}
RESOURCES = ("cpus", "memory_mb", "disk_kb", "gpus")


@dataclass(frozen=True)
class PoolShape:
    """A worker pool as the autoscaler sees it: what one of its workers offers."""

    name: str  # the slots' WorkerPool
    deployment: str  # its worker Deployment, whose pod template burst workers copy
    workers: int  # always-on (the Deployment's replicas)
    max_workers: int  # always-on and burst together
    idle_shutdown_seconds: int
    cpus: int
    memory_mb: int
    disk_kb: int
    gpus: int = 0

    @property
    def capacity(self) -> "Capacity":
        return Capacity(self.cpus, self.memory_mb, self.disk_kb, self.gpus)


@dataclass
class Capacity:
    """What a worker, or what is left of an unclaimed slot, can still give jobs."""

    cpus: float
    memory_mb: float
    disk_kb: float
    gpus: float = 0

    def fits(self, need: "Capacity") -> bool:
        return all(getattr(need, r) <= getattr(self, r) for r in RESOURCES)

    def take(self, need: "Capacity") -> None:
        for r in RESOURCES:
            setattr(self, r, getattr(self, r) - getattr(need, r))

    def __str__(self) -> str:
        return f"{self.cpus:g} CPUs, {self.memory_mb:g} MB memory, {self.disk_kb:g} KB disk, {self.gpus:g} GPUs"


@dataclass
class Decision:
    """One pool's decision: idle jobs a worker of it could run, workers already coming
    (starting burst workers and unclaimed slots with room), and workers to create."""

    pool: str
    fitting: int = 0
    coming: int = 0
    create: int = 0
    waiting: int = 0  # jobs left without a worker: the pool is at maxWorkers
    withheld: int = 0  # workers those jobs would need, which maxWorkers withholds

    def line(self) -> str:
        return (f"autoscaler: pool {self.pool}: {self.fitting} idle jobs fit, {self.coming} workers coming, "
                f"{self.create} created" + (f", {self.waiting} jobs wait (maxWorkers reached)" if self.waiting else ""))


@dataclass
class Unfit:
    job: str  # ClusterId.ProcId
    reason: str


def slot_ad(shape: PoolShape, machine: dict):
    """The partitionable slot a new worker of `shape` advertises, whole: its size, its
    WorkerPool, and what every worker's slot says of the machine (from the image)."""
    import classad2

    ad = classad2.ClassAd()
    for attribute, value in machine.items():
        ad[attribute] = value
    for prefix in ("", "Total", "Detected"):
        ad[f"{prefix}Cpus"] = shape.cpus
        ad[f"{prefix}Memory"] = shape.memory_mb
        ad[f"{prefix}GPUs"] = shape.gpus
    ad["Disk"] = ad["TotalDisk"] = shape.disk_kb
    ad["WorkerPool"] = shape.name
    ad["HasFileTransfer"] = True
    ad["PartitionableSlot"] = True
    ad["SlotType"] = "Partitionable"
    ad["State"] = "Unclaimed"
    ad["Activity"] = "Idle"
    ad["MyType"] = "Machine"
    ad["Requirements"] = True  # the workers' START
    return ad


def request(job, modifiers: dict[str, str] = REQUEST_MODIFIERS) -> Capacity:
    """What the job would take of a partitionable slot: its requests as the slot carves them."""
    import classad2

    def value(attribute: str, default: float) -> float:
        if attribute not in job:
            return default
        expression = modifiers.get(attribute)
        result = classad2.ExprTree(expression).eval(job) if expression else job.eval(attribute)
        return float(result) if isinstance(result, (int, float)) and not isinstance(result, bool) else default

    return Capacity(value("RequestCpus", 1), value("RequestMemory", 0), value("RequestDisk", 0),
                    value("RequestGPUs", 0))


def job_id(job) -> str:
    return f"{job.get('ClusterId', '?')}.{job.get('ProcId', '?')}"


def decide(jobs: list, shapes: list[PoolShape], machine: dict, coming: dict[str, list[Capacity]],
           active: dict[str, int], modifiers: dict[str, str] = REQUEST_MODIFIERS,
           always_on: list[PoolShape] = ()) -> tuple[list[Decision], list[Unfit]]:
    """Workers to create per pool. `jobs`: the idle jobs' ClassAds. `shapes`: the pools that
    may burst. `coming`: per pool, the room of its unclaimed slots and of its burst workers
    that have not advertised yet. `active`: per pool, its burst workers not finished.
    `always_on`: pools that cannot burst; a job one of them matches is no job that fits
    no pool, though nothing is created for it."""
    slots = {shape.name: slot_ad(shape, machine) for shape in [*shapes, *always_on]}
    sizes = {shape.name: shape.capacity for shape in [*shapes, *always_on]}
    decisions = {shape.name: Decision(shape.name, coming=len(coming.get(shape.name, []))) for shape in shapes}
    bins = {shape.name: [replace(c) for c in coming.get(shape.name, [])] for shape in shapes}
    new = {shape.name: [] for shape in shapes}
    withheld = {shape.name: [] for shape in shapes}
    room = {shape.name: max(0, shape.max_workers - shape.workers - active.get(shape.name, 0)) for shape in shapes}
    unfit = []
    needs = [(request(job, modifiers), job) for job in jobs]
    # First fit, largest first: big jobs take fresh workers, small ones fill what is left.
    needs.sort(key=lambda pair: (pair[0].gpus, pair[0].cpus, pair[0].memory_mb, pair[0].disk_kb), reverse=True)
    for need, job in needs:
        fitting = [name for name in slots if sizes[name].fits(need) and slots[name].symmetricMatch(job)]
        if not fitting:
            sizes_said = "; ".join(f"{name}: {size}" for name, size in sizes.items())
            unfit.append(Unfit(job_id(job), f"it requests {need} and matches no pool's worker ({sizes_said})"))
            continue
        bursting = [name for name in fitting if name in decisions]
        for name in bursting:
            decisions[name].fitting += 1
        placed = next((b for name in bursting for b in [*bins[name], *new[name]] if b.fits(need)), None)
        if placed is None:
            pool = next((name for name in bursting if len(new[name]) < room[name]), None)
            if pool is None:
                if bursting:
                    # Packed as if maxWorkers allowed it: what the demand is, for the metrics.
                    decisions[bursting[0]].waiting += 1
                    spare = next((b for b in withheld[bursting[0]] if b.fits(need)), None)
                    if spare is None:
                        spare = replace(sizes[bursting[0]])
                        withheld[bursting[0]].append(spare)
                    spare.take(need)
                continue
            placed = replace(sizes[pool])  # a fresh worker: the pool's whole size
            new[pool].append(placed)
        placed.take(need)
    for name, decision in decisions.items():
        decision.create = len(new[name])
        decision.withheld = len(withheld[name])
    return list(decisions.values()), unfit


# ---- the cluster: HTCondor and the Kubernetes API -------------------------------------------
class APIError(RuntimeError):
    """The API server answered with an error status."""

    def __init__(self, method: str, path: str, code: int, body: str):
        super().__init__(f"{method} {path}: {code} {body[:500]}")
        self.code, self.body = code, body


class AdmissionNotEnforced(RuntimeError):
    """The API server would admit a Job of the autoscaler's that the policy must refuse."""


class KubernetesAPI:
    """The API server, with the pod's service-account token (re-read for every request:
    Kubernetes rotates it)."""

    ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"

    def __init__(self):
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        self.base = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        self.context = ssl.create_default_context(cafile=f"{self.ACCOUNT}/ca.crt")

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        with open(f"{self.ACCOUNT}/token") as token:
            headers = {"Authorization": f"Bearer {token.read().strip()}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request_ = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request_, context=self.context, timeout=30) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as error:
            raise APIError(method, path, error.code, error.read().decode(errors="replace")) from None


def finished(job: dict) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in job.get("status", {}).get("conditions", []))


def burst_job(deployment: dict, shape: PoolShape, instance: str) -> dict:
    """A burst worker: the pool's Deployment's pod, as a Job that ends when its startd
    leaves. Owned by that Deployment, so that deleting it (`pulumi destroy`) deletes them."""
    template = json.loads(json.dumps(deployment["spec"]["template"]))
    metadata = template.setdefault("metadata", {})
    metadata.setdefault("labels", {}).update({BURST_LABEL: "true", WORKER_POOL_LABEL: shape.name})
    spec = template["spec"]
    spec["restartPolicy"] = "Never"
    for container in spec["containers"]:
        if container["name"] == CONTAINER:
            container.setdefault("env", []).append(
                {"name": "_CONDOR_STARTD_NOCLAIM_SHUTDOWN", "value": str(shape.idle_shutdown_seconds)})
    meta = deployment["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": f"{meta['name']}-burst-",
            "namespace": meta["namespace"],
            "labels": {**meta.get("labels", {}), BURST_LABEL: "true", WORKER_POOL_LABEL: shape.name,
                       INSTANCE_LABEL: instance},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                 "uid": meta["uid"]}],
        },
        "spec": {
            # A failed burst worker is not retried: the next decision counts again.
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": FINISHED_JOB_SECONDS,
            "template": template,
        },
    }


def with_secret(job: dict, secret: str) -> dict:
    """`job` whose pod also mounts `secret`: what the admission policy must refuse."""
    probe = json.loads(json.dumps(job))
    probe["spec"]["template"]["spec"].setdefault("volumes", []).append(
        {"name": "admission-check", "secret": {"secretName": secret}})
    return probe


def check_admission(api, namespace: str, job: dict, policy: str, secret: str) -> None:
    """Raise AdmissionNotEnforced unless the API server refuses, through `policy`, a dry run
    of `job` mounting `secret` (nothing is created either way)."""
    try:
        api.call("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs?dryRun=All", with_secret(job, secret))
    except APIError as error:
        if error.code in (403, 422) and f"ValidatingAdmissionPolicy '{policy}'" in error.body:
            return
        raise
    raise AdmissionNotEnforced(
        f"the API server admits a Job of the autoscaler's that mounts the Secret {secret} (a dry run): the "
        f"admission policy {policy} is not in force, so no burst worker is created until it is")


class Pool:
    """The live pool: its schedds' idle jobs, its slots, its burst workers."""

    def __init__(self, api: KubernetesAPI, namespace: str, instance: str, policy: str, check_secret: str):
        import htcondor2

        self.htcondor = htcondor2
        self.api = api
        self.namespace = namespace
        self.instance = instance
        self.policy, self.check_secret = policy, check_secret
        self.selector = f"{INSTANCE_LABEL}={instance},{BURST_LABEL}=true"

    def machine(self) -> dict:
        param = self.htcondor.param
        return {attribute: param[knob] for attribute, knob in MACHINE_PARAMS.items() if knob in param}

    def modifiers(self) -> dict[str, str]:
        param = self.htcondor.param
        return {attribute: param.get(f"MODIFY_REQUEST_EXPR_{attribute.upper()}", default)
                for attribute, default in REQUEST_MODIFIERS.items()}

    def idle_jobs(self) -> list:
        collector = self.htcondor.Collector()
        jobs = []
        for schedd_ad in collector.locateAll(self.htcondor.DaemonType.Schedd):
            jobs += self.htcondor.Schedd(schedd_ad).query(constraint="JobStatus == 1")
        return jobs

    def slots(self) -> list:
        return self.htcondor.Collector().query(
            self.htcondor.AdTypes.Startd, constraint="PartitionableSlot =?= true",
            projection=["Machine", "WorkerPool", "State", "Cpus", "Memory", "Disk", "GPUs"])

    def burst(self) -> tuple[list[dict], list[dict]]:
        query = f"?labelSelector={urllib.request.quote(self.selector)}"
        jobs = self.api.call("GET", f"/apis/batch/v1/namespaces/{self.namespace}/jobs{query}")["items"]
        pods = self.api.call("GET", f"/api/v1/namespaces/{self.namespace}/pods{query}")["items"]
        return jobs, pods

    def create(self, shape: PoolShape) -> str:
        deployment = self.api.call("GET", f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{shape.deployment}")
        job = burst_job(deployment, shape, self.instance)
        check_admission(self.api, self.namespace, job, self.policy, self.check_secret)
        return self.api.call("POST", f"/apis/batch/v1/namespaces/{self.namespace}/jobs", job)["metadata"]["name"]


def coming_capacity(shapes: list[PoolShape], slots: list, jobs: list[dict], pods: list[dict]
                    ) -> tuple[dict[str, list[Capacity]], dict[str, int], dict[str, int]]:
    """Per pool: the room already there or on its way (unclaimed slots' remainders, and a
    whole worker for each burst worker whose startd has not advertised yet), how many of
    its burst workers are not finished, and how many of those have advertised (running)."""
    by_name = {shape.name: shape for shape in shapes}
    coming = {name: [] for name in by_name}
    active = {name: 0 for name in by_name}
    running = {name: 0 for name in by_name}
    advertised = set()
    for slot in slots:
        advertised.add(slot.get("Machine"))
        pool = slot.get("WorkerPool")
        if pool in coming and slot.get("State") == "Unclaimed":
            coming[pool].append(Capacity(*(float(slot.get(a) or 0) for a in ("Cpus", "Memory", "Disk", "GPUs"))))
    pods_of = {}
    for pod in pods:
        owner = pod["metadata"].get("labels", {}).get(JOB_NAME_LABEL) or pod["metadata"].get("labels", {}).get("job-name")
        pods_of.setdefault(owner, []).append(pod)
    for job in jobs:
        pool = job["metadata"].get("labels", {}).get(WORKER_POOL_LABEL)
        if pool not in by_name or finished(job):
            continue
        active[pool] += 1
        hostnames = {pod["metadata"]["name"][:HOSTNAME_LIMIT] for pod in pods_of.get(job["metadata"]["name"], [])}
        if hostnames & advertised:
            running[pool] += 1
        else:
            coming[pool].append(by_name[pool].capacity)
    return coming, active, running


def shapes_from(text: str) -> tuple[list[PoolShape], list[PoolShape]]:
    """The pools from their JSON: those that may burst, and those that may not."""
    shapes = [PoolShape(**entry) for entry in json.loads(text)]
    return [s for s in shapes if s.max_workers > s.workers], [s for s in shapes if s.max_workers <= s.workers]


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Snapshot:
    """What one decision saw and did, for the metrics."""

    decisions: list[Decision]
    active: dict[str, int]  # burst workers not finished, per pool
    running: dict[str, int]  # of those, the ones whose startd has advertised
    unfit: int  # idle jobs that fit no pool


def cycle(pool: Pool, shapes: list[PoolShape], always_on: list[PoolShape], said: dict) -> Snapshot:
    """One decision: read, decide, create. `said` keeps what was logged last (per pool, and
    per job that fits no pool), so that an unchanged decision is not logged every few
    seconds; a decision that creates workers always is."""
    jobs = pool.idle_jobs()
    burst_jobs, pods = pool.burst()
    coming, active, running = coming_capacity(shapes, pool.slots(), burst_jobs, pods)
    decisions, unfit = decide(jobs, shapes, pool.machine(), coming, active, pool.modifiers(), always_on)
    reasons = said.setdefault("unfit", {})
    for job in unfit:
        if reasons.get(job.job) != job.reason:
            log(f"autoscaler: job {job.job} fits no pool: {job.reason}")
    said["unfit"] = {job.job: job.reason for job in unfit}  # only jobs still idle
    by_name = {shape.name: shape for shape in shapes}
    for decision in decisions:
        created = [pool.create(by_name[decision.pool]) for _ in range(decision.create)]
        line = decision.line()
        if created or said.get(decision.pool) != line:
            log(line + (f" ({', '.join(created)})" if created else ""))
        said[decision.pool] = line
    return Snapshot(decisions, active, running, len(unfit))


# ---- metrics: the decisions, for Prometheus ----------------------------------------------
# `pool` is the slots' WorkerPool.
METRICS = (
    Metric("htcondor_burst_idle_jobs", "gauge", "Idle jobs a burst worker of the pool could run, at the last decision.",
           ("pool",)),
    Metric("htcondor_burst_wanted_workers", "gauge", "Burst workers the pool's idle jobs call for: those not "
           "finished, those just created and those maxWorkers withholds.", ("pool",)),
    Metric("htcondor_burst_workers", "gauge", "Burst workers not finished, by phase: starting (no slot advertised "
           "yet) or running.", ("pool", "phase")),
    Metric("htcondor_burst_max_workers", "gauge", "The most burst workers the pool may have (maxWorkers less workers).",
           ("pool",)),
    Metric("htcondor_burst_waiting_jobs", "gauge", "Idle jobs of the pool left without a worker: maxWorkers reached.",
           ("pool",)),
    Metric("htcondor_burst_created_workers_total", "counter", "Burst workers this autoscaler created.", ("pool",)),
    Metric("htcondor_burst_unfit_jobs", "gauge", "Idle jobs that fit no worker pool."),
    Metric("htcondor_autoscaler_last_decision_timestamp_seconds", "gauge",
           "When the last decision was taken (Unix time)."),
    Metric("htcondor_autoscaler_failed_decisions_total", "counter",
           "Decisions not taken: the collector, a schedd or the API server did not answer."),
)


def exposition(shapes: list[PoolShape], snapshot: Snapshot | None, created: dict[str, int], failed: int,
               decided_at: float | None) -> str:
    """Prometheus' text format of the last decision. Before the first one, only the
    counters and the ceilings: no gauge says 0 idle jobs that nobody has counted."""
    values: dict[str, dict[tuple, float]] = {metric.name: {} for metric in METRICS}
    for shape in shapes:
        values["htcondor_burst_max_workers"][(shape.name,)] = shape.max_workers - shape.workers
        values["htcondor_burst_created_workers_total"][(shape.name,)] = created.get(shape.name, 0)
    if snapshot is not None:
        for decision in snapshot.decisions:
            pool = decision.pool
            active, running = snapshot.active.get(pool, 0), snapshot.running.get(pool, 0)
            values["htcondor_burst_idle_jobs"][(pool,)] = decision.fitting
            values["htcondor_burst_wanted_workers"][(pool,)] = active + decision.create + decision.withheld
            values["htcondor_burst_workers"][(pool, "starting")] = active - running
            values["htcondor_burst_workers"][(pool, "running")] = running
            values["htcondor_burst_waiting_jobs"][(pool,)] = decision.waiting
        values["htcondor_burst_unfit_jobs"][()] = snapshot.unfit
    if decided_at is not None:
        values["htcondor_autoscaler_last_decision_timestamp_seconds"][()] = decided_at
    values["htcondor_autoscaler_failed_decisions_total"][()] = failed
    return render(METRICS, values)


def main() -> None:
    shapes, always_on = shapes_from(os.environ[POOLS_ENV])
    interval = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL_SECONDS))
    install_token()
    pool = Pool(KubernetesAPI(), os.environ[NAMESPACE_ENV], os.environ[INSTANCE_ENV],
                os.environ[ADMISSION_POLICY_ENV], os.environ[ADMISSION_CHECK_SECRET_ENV])
    log(f"autoscaler: every {interval:g}s for pools "
        + ", ".join(f"{s.name} (up to {s.max_workers} workers, {s.workers} always on)" for s in shapes))
    said: dict = {}
    port = os.environ.get(METRICS_PORT_ENV)
    latest = {"text": exposition(shapes, None, {}, 0, None)}
    if port:
        Server(int(port), lambda: latest["text"])
    snapshot, created, failed, decided_at = None, {}, 0, None
    while True:
        started = time.monotonic()
        try:
            snapshot = cycle(pool, shapes, always_on, said)
            decided_at = time.time()
            for decision in snapshot.decisions:
                created[decision.pool] = created.get(decision.pool, 0) + decision.create
        except Exception as error:  # the collector, a schedd or the API away: try again
            failed += 1
            log(f"autoscaler: no decision this time: {type(error).__name__}: {error}")
        latest["text"] = exposition(shapes, snapshot, created, failed, decided_at)
        with open(HEARTBEAT, "w"):
            pass
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


def alive(now: float | None = None) -> bool:
    try:
        return (now or time.time()) - os.stat(HEARTBEAT).st_mtime < HEARTBEAT_SECONDS
    except OSError:
        return False


if __name__ == "__main__":
    if sys.argv[1:] == ["--alive"]:
        sys.exit(0 if alive() else 1)
    main()
