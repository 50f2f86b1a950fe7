"""The autoscaler's decision (pool/files/autoscaler.py), outside any pod: idle jobs, pool
shapes and coming capacity in, workers to create out. Jobs are ClassAds as condor_submit
writes them, matched by HTCondor's own classad2 (the htcondor wheel, a test dependency)."""

import json
import warnings

import classad2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.pod_programs import load
from tests.render import REPO

autoscaler = load("autoscaler")

with warnings.catch_warnings():
    # No configuration here: the bindings say they read none (/dev/null), and so give
    # HTCondor's own defaults, which is what is wanted.
    warnings.simplefilter("ignore")
    import htcondor2
# How HTCondor carves a job's requests out of a partitionable slot, as HTCondor itself
# declares it (its param table's defaults): the oracle for the autoscaler's rounding, never
# the autoscaler's own copy (REQUEST_MODIFIERS).
HTCONDOR_MODIFIERS = {attribute: htcondor2.param[f"MODIFY_REQUEST_EXPR_{attribute.upper()}"]
                      for attribute in ("RequestCpus", "RequestMemory", "RequestDisk")}

MACHINE = {"Arch": "X86_64", "OpSys": "LINUX", "OpSysAndVer": "Debian13", "FileSystemDomain": "pool",
           "UidDomain": "pool"}
# condor_submit's own Requirements for a job that names no platform.
SUBMIT_REQUIREMENTS = ('(TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && (TARGET.Disk >= RequestDisk) '
                       '&& (TARGET.Memory >= RequestMemory) && (TARGET.HasFileTransfer)')
GPU_REQUIREMENTS = SUBMIT_REQUIREMENTS + " && (TARGET.GPUs >= RequestGPUs)"

DEFAULT = autoscaler.PoolShape("default", "htcondor-worker", workers=0, max_workers=4, idle_shutdown_seconds=300,
                               cpus=2, memory_mb=4096, disk_kb=10_000_000)
GPU = autoscaler.PoolShape("gpu", "htcondor-worker-gpu", workers=0, max_workers=2, idle_shutdown_seconds=300,
                           cpus=4, memory_mb=16384, disk_kb=10_000_000, gpus=1)
BIGMEM = autoscaler.PoolShape("bigmem", "htcondor-worker-bigmem", workers=1, max_workers=3,
                              idle_shutdown_seconds=300, cpus=2, memory_mb=65536, disk_kb=10_000_000)


def job(proc: int, cpus: int = 1, memory: int = 1024, disk: int = 1024, gpus: int = 0,
        requirements: str = SUBMIT_REQUIREMENTS):
    ad = classad2.ClassAd()
    ad["ClusterId"], ad["ProcId"] = 1, proc
    ad["RequestCpus"], ad["RequestMemory"], ad["RequestDisk"] = cpus, memory, disk
    if gpus:
        ad["RequestGPUs"] = gpus
    ad["Requirements"] = classad2.ExprTree(requirements)
    ad["JobStatus"] = 1
    return ad


def decide(jobs, shapes, coming=None, active=None, always_on=()):
    decisions, unfit = autoscaler.decide(jobs, shapes, MACHINE, coming or {}, active or {}, always_on=always_on)
    return {d.pool: d for d in decisions}, unfit


def test_several_small_jobs_pack_into_one_worker():
    decisions, unfit = decide([job(i, cpus=1, memory=1024) for i in range(2)], [DEFAULT])
    assert decisions["default"].create == 1 and decisions["default"].fitting == 2
    assert not unfit
    # A third does not fit the first worker's 2 CPUs: a second worker.
    decisions, _ = decide([job(i, cpus=1, memory=1024) for i in range(3)], [DEFAULT])
    assert decisions["default"].create == 2


def test_memory_is_carved_as_a_partitionable_slot_does():
    # Jobs of 1000 MB take 1024 MB each once quantized (HTCondor's MODIFY_REQUEST_EXPR_
    # REQUESTMEMORY): 4 fill an 8-CPU, 4096 MB worker, a 5th needs another.
    wide = autoscaler.PoolShape("default", "w", 0, 4, 300, cpus=8, memory_mb=4096, disk_kb=10_000_000)
    decisions, _ = decide([job(i, memory=1000) for i in range(4)], [wide])
    assert decisions["default"].create == 1
    decisions, _ = decide([job(i, memory=1000) for i in range(5)], [wide])
    assert decisions["default"].create == 2


def test_a_gpu_job_goes_only_to_the_gpu_pool():
    decisions, unfit = decide([job(0, gpus=1, requirements=GPU_REQUIREMENTS)], [DEFAULT, GPU])
    assert decisions["gpu"].create == 1 and decisions["default"].create == 0
    assert decisions["default"].fitting == 0
    assert not unfit


def test_a_job_asking_for_a_worker_pool_goes_to_that_pool_only():
    wants_bigmem = SUBMIT_REQUIREMENTS + ' && (TARGET.WorkerPool == "bigmem")'
    decisions, _ = decide([job(0, requirements=wants_bigmem)], [DEFAULT, BIGMEM])
    assert decisions["bigmem"].create == 1 and decisions["default"].create == 0
    # ... and one that fits both takes the first pool declared (the default one).
    decisions, _ = decide([job(0)], [DEFAULT, BIGMEM])
    assert decisions["default"].create == 1 and decisions["bigmem"].create == 0


def test_a_job_too_big_for_any_pool_gets_no_worker_and_a_reason():
    decisions, unfit = decide([job(7, cpus=64)], [DEFAULT, GPU])
    assert all(d.create == 0 for d in decisions.values())
    (reason,) = unfit
    assert reason.job == "1.7"
    assert "64 CPUs" in reason.reason and "default: 2 CPUs" in reason.reason and "gpu: 4 CPUs" in reason.reason


def test_a_job_whose_requirements_no_worker_meets_fits_no_pool():
    decisions, unfit = decide([job(0, requirements='TARGET.OpSys == "WINDOWS"')], [DEFAULT])
    assert decisions["default"].create == 0
    assert [u.job for u in unfit] == ["1.0"]


def test_never_more_than_max_workers_counting_always_on_and_active_burst_workers():
    many = [job(i, cpus=2) for i in range(10)]
    decisions, _ = decide(many, [DEFAULT])
    assert decisions["default"].create == DEFAULT.max_workers
    assert decisions["default"].waiting == 10 - DEFAULT.max_workers
    # bigmem: 1 always on, 3 at most: 2 burst workers, less those already running.
    decisions, _ = decide(many, [BIGMEM], active={"bigmem": 1})
    assert decisions["bigmem"].create == 1
    decisions, _ = decide(many, [BIGMEM], active={"bigmem": 2})
    assert decisions["bigmem"].create == 0


def test_capacity_already_coming_is_not_created_again():
    # A burst worker still starting takes two 1-CPU jobs; an unclaimed slot with 1 CPU left
    # takes a third; the fourth needs a new worker.
    coming = {"default": [DEFAULT.capacity, autoscaler.Capacity(1, 2048, 5_000_000)]}
    decisions, _ = decide([job(i) for i in range(4)], [DEFAULT], coming=coming, active={"default": 1})
    assert decisions["default"].create == 1 and decisions["default"].coming == 2
    decisions, _ = decide([job(i) for i in range(3)], [DEFAULT], coming=coming, active={"default": 1})
    assert decisions["default"].create == 0


def test_a_job_an_always_on_pool_runs_is_not_unfit_and_starts_no_burst():
    always_on = autoscaler.PoolShape("big", "htcondor-worker-big", workers=2, max_workers=2,
                                     idle_shutdown_seconds=300, cpus=32, memory_mb=131072, disk_kb=10_000_000)
    decisions, unfit = decide([job(0, cpus=16)], [DEFAULT], always_on=[always_on])
    assert not unfit and decisions["default"].create == 0


def test_coming_capacity_counts_unadvertised_burst_workers_and_unclaimed_slots():
    jobs = [{"metadata": {"name": "w-burst-a", "labels": {autoscaler.WORKER_POOL_LABEL: "default"}}, "status": {}},
            {"metadata": {"name": "w-burst-b", "labels": {autoscaler.WORKER_POOL_LABEL: "default"}}, "status": {}},
            {"metadata": {"name": "w-burst-c", "labels": {autoscaler.WORKER_POOL_LABEL: "default"}},
             "status": {"conditions": [{"type": "Complete", "status": "True"}]}}]
    pods = [{"metadata": {"name": "w-burst-a-x1", "labels": {autoscaler.JOB_NAME_LABEL: "w-burst-a"}}},
            {"metadata": {"name": "w-burst-b-x2", "labels": {autoscaler.JOB_NAME_LABEL: "w-burst-b"}}}]
    # a's startd has advertised (and is claimed: no room); b's has not; c is done.
    slots = [{"Machine": "w-burst-a-x1", "WorkerPool": "default", "State": "Claimed", "Cpus": 0, "Memory": 0,
              "Disk": 0},
             {"Machine": "always-on", "WorkerPool": "default", "State": "Unclaimed", "Cpus": 1, "Memory": 512,
              "Disk": 100}]
    coming, active, running = autoscaler.coming_capacity([DEFAULT], slots, jobs, pods)
    assert active == {"default": 2}
    assert running == {"default": 1}
    assert coming["default"] == [autoscaler.Capacity(1, 512, 100, 0), DEFAULT.capacity]


def test_a_burst_job_is_the_deployments_pod_that_leaves_when_idle():
    deployment = {"metadata": {"name": "htcondor-worker", "namespace": "ns", "uid": "u-1",
                               "labels": {"app.kubernetes.io/instance": "htcondor"}},
                  "spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/component": "worker"}},
                                        "spec": {"restartPolicy": "Always", "automountServiceAccountToken": False,
                                                 "containers": [{"name": "htcondor", "env": [{"name": "A",
                                                                                              "value": "1"}]}]}}}}
    burst = autoscaler.burst_job(deployment, DEFAULT, "htcondor")
    pod = burst["spec"]["template"]
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert {"name": "_CONDOR_STARTD_NOCLAIM_SHUTDOWN", "value": "300"} in pod["spec"]["containers"][0]["env"]
    assert pod["metadata"]["labels"] == {"app.kubernetes.io/component": "worker", autoscaler.BURST_LABEL: "true",
                                         autoscaler.WORKER_POOL_LABEL: "default"}
    assert burst["spec"]["backoffLimit"] == 0 and burst["spec"]["ttlSecondsAfterFinished"] > 0
    # Deleting the Deployment (pulumi destroy) deletes its burst workers too.
    assert burst["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "htcondor-worker", "uid": "u-1"}]
    # The Deployment read from the API is left as it was.
    assert deployment["spec"]["template"]["spec"]["restartPolicy"] == "Always"


def test_the_pools_json_separates_pools_that_may_burst():
    text = json.dumps([DEFAULT.__dict__, {**BIGMEM.__dict__, "max_workers": 1}])
    shapes, always_on = autoscaler.shapes_from(text)
    assert [s.name for s in shapes] == ["default"] and [s.name for s in always_on] == ["bigmem"]


class FakePool:
    """The live pool, as the cycle sees it: idle jobs, slots, burst workers; creations recorded."""

    def __init__(self, jobs, burst_jobs=(), pods=(), slots=()):
        self.jobs, self.burst_jobs, self.pods, self.slots_ = jobs, list(burst_jobs), list(pods), list(slots)
        self.created = []

    def idle_jobs(self):
        return self.jobs

    def burst(self):
        return self.burst_jobs, self.pods

    def slots(self):
        return self.slots_

    def machine(self):
        return MACHINE

    def modifiers(self):  # what the pod's own HTCondor says (Pool.modifiers reads its param)
        return HTCONDOR_MODIFIERS

    def create(self, shape):
        name = f"{shape.deployment}-burst-{len(self.created)}"
        self.created.append(name)
        self.burst_jobs.append({"metadata": {"name": name, "labels": {autoscaler.WORKER_POOL_LABEL: shape.name}},
                                "status": {}})
        return name


def test_a_cycle_logs_one_line_per_decision_and_counts_its_own_creations_next_time(capsys):
    pool = FakePool([job(i, cpus=2) for i in range(3)] + [job(9, cpus=64)])
    said = {}
    shapes = [autoscaler.PoolShape("default", "w", 0, 2, 300, 2, 4096, 10_000_000)]
    autoscaler.cycle(pool, shapes, [], said)
    assert pool.created == ["w-burst-0", "w-burst-1"]  # maxWorkers 2, though 3 jobs wait
    lines = capsys.readouterr().err.splitlines()
    assert any("job 1.9 fits no pool" in line for line in lines)
    assert any(line.startswith("autoscaler: pool default: 3 idle jobs fit, 0 workers coming, 2 created")
               for line in lines)
    # The next cycle (an autoscaler restarted, too) counts them: nothing more, nothing logged again.
    autoscaler.cycle(pool, shapes, [], said)
    assert pool.created == ["w-burst-0", "w-burst-1"]
    again = capsys.readouterr().err.splitlines()
    assert again == ["autoscaler: pool default: 3 idle jobs fit, 2 workers coming, 0 created, "
                     "1 jobs wait (maxWorkers reached)"]


# Requests on either side of HTCondor's quanta (1 CPU, 128 MB, 1024 KB).
@pytest.mark.parametrize("cpus, memory, disk", [(1, 1, 1), (1, 128, 1024), (2, 129, 1025), (1, 1000, 1000),
                                                (3, 1100, 5000)])
def test_requests_round_up_as_htcondor_carves_them(cpus, memory, disk):
    """The autoscaler's rounding (its REQUEST_MODIFIERS, what it uses where the pod's
    configuration sets none) is HTCondor's own: each request evaluated with HTCondor's
    default MODIFY_REQUEST_EXPR_* (tests/test_autoscaler_emulated.py checks the same against
    the HTCondor the pods run)."""
    ad = job(0, cpus=cpus, memory=memory, disk=disk)
    carved = {attribute: classad2.ExprTree(expression).eval(ad) for attribute, expression in HTCONDOR_MODIFIERS.items()}
    need = autoscaler.request(ad)
    assert (need.cpus, need.memory_mb, need.disk_kb) == (
        carved["RequestCpus"], carved["RequestMemory"], carved["RequestDisk"])
    assert carved["RequestMemory"] % 128 == 0 and carved["RequestMemory"] >= memory  # rounded up, not kept


def test_jobs_beyond_max_workers_are_counted_as_the_workers_they_would_need():
    # 5 two-CPU jobs, two-CPU workers, room for 2: 2 created, 3 jobs wait, 3 workers withheld.
    decisions, _ = decide([job(i, cpus=2) for i in range(5)], [autoscaler.PoolShape(
        "default", "w", workers=0, max_workers=2, idle_shutdown_seconds=300, cpus=2, memory_mb=4096,
        disk_kb=10_000_000)])
    assert (decisions["default"].create, decisions["default"].waiting, decisions["default"].withheld) == (2, 3, 3)
    # Small jobs that wait share the workers they would need.
    decisions, _ = decide([job(i, cpus=1) for i in range(6)], [autoscaler.PoolShape(
        "default", "w", workers=0, max_workers=1, idle_shutdown_seconds=300, cpus=2, memory_mb=4096,
        disk_kb=10_000_000)])
    assert (decisions["default"].create, decisions["default"].waiting, decisions["default"].withheld) == (1, 4, 2)


def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(family, **labels) -> float:
    (sample,) = [s for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())
                 and not s.name.endswith("_created")]
    return sample.value


def test_the_metrics_say_per_pool_what_is_wanted_starting_and_running():
    shape = autoscaler.PoolShape("default", "w", 0, 2, 300, 2, 4096, 10_000_000)
    pool = FakePool([job(i, cpus=2) for i in range(3)] + [job(9, cpus=64)])
    first = autoscaler.cycle(pool, [shape], [], {})
    # A's startd has advertised and runs the first job; B's has not: it starts.
    pool.jobs = pool.jobs[1:]
    pool.pods = [{"metadata": {"name": f"{name}-x", "labels": {autoscaler.JOB_NAME_LABEL: name}}}
                 for name in pool.created]
    pool.slots_ = [{"Machine": f"{pool.created[0]}-x", "WorkerPool": "default", "State": "Claimed", "Cpus": 0,
                    "Memory": 0, "Disk": 0}]
    second = autoscaler.cycle(pool, [shape], [], {})
    text = autoscaler.exposition([shape], second, {"default": first.decisions[0].create}, 1, 1700000000.0)
    metrics = families(text)  # Prometheus' own parser reads it
    assert {name: metrics[name].type for name in metrics} == {
        m.name.removesuffix("_total"): m.type for m in autoscaler.METRICS}
    for m in autoscaler.METRICS:  # each sample has the declared labels
        assert all(set(s.labels) == set(m.labels) for s in metrics[m.name.removesuffix("_total")].samples
                   if not s.name.endswith("_created")), m.name
    assert value(metrics["htcondor_burst_idle_jobs"], pool="default") == 2
    # 2 not finished, and the third job's worker, which maxWorkers 2 withholds.
    assert value(metrics["htcondor_burst_wanted_workers"], pool="default") == 3
    assert value(metrics["htcondor_burst_workers"], pool="default", phase="running") == 1
    assert value(metrics["htcondor_burst_workers"], pool="default", phase="starting") == 1
    assert value(metrics["htcondor_burst_waiting_jobs"], pool="default") == 1
    assert value(metrics["htcondor_burst_max_workers"], pool="default") == 2
    assert value(metrics["htcondor_burst_created_workers"], pool="default") == 2
    assert value(metrics["htcondor_burst_unfit_jobs"]) == 1
    assert value(metrics["htcondor_autoscaler_failed_decisions"]) == 1
    assert value(metrics["htcondor_autoscaler_last_decision_timestamp_seconds"]) == 1700000000.0


def test_before_the_first_decision_no_gauge_claims_a_count():
    metrics = families(autoscaler.exposition([DEFAULT], None, {}, 3, None))
    assert {name for name, family in metrics.items() if family.samples} == {
        "htcondor_burst_max_workers", "htcondor_burst_created_workers", "htcondor_autoscaler_failed_decisions"}


def test_readme_lists_every_metric_the_autoscaler_serves():
    readme = (REPO / "README.md").read_text()
    table = readme.split("<!-- burst-metrics-table -->\n", 1)[1].split("<!-- /burst-metrics-table -->", 1)[0]
    assert table == burst_metrics_table(), "regenerate it: python -c 'from tests.test_autoscaler import " \
        "burst_metrics_table; print(burst_metrics_table(), end=\"\")'"


def burst_metrics_table() -> str:
    rows = ["| metric | type | labels | meaning |", "| --- | --- | --- | --- |"]
    rows += [f"| `{m.name}` | {m.type} | {', '.join(f'`{label}`' for label in m.labels) or '-'} | {m.help} |"
             for m in autoscaler.METRICS]
    return "\n".join(rows) + "\n"


class FakeAPI:
    """The API server as the autoscaler's create sees it: `dry_run` answers the dry run of
    the check (None: admitted), every call is recorded."""

    def __init__(self, dry_run: Exception | None):
        self.dry_run, self.calls = dry_run, []

    def call(self, method, path, body=None):
        self.calls.append((method, path, body))
        if method == "GET":
            return {"metadata": {"name": "htcondor-worker", "namespace": "ns", "uid": "u-1"},
                    "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "htcondor"}]}}}}
        if "dryRun=All" in path:
            if self.dry_run:
                raise self.dry_run
            return body
        return {"metadata": {"name": "htcondor-worker-burst-x"}}


POLICY_NAME = "htcondor-autoscaler.ns"
REFUSED = ('{"kind":"Status","status":"Failure","message":"jobs.batch \\"htcondor-worker-burst-\\" is forbidden: '
           f"ValidatingAdmissionPolicy '{POLICY_NAME}' with binding '{POLICY_NAME}' denied request: a burst "
           'worker\'s volumes are ...","reason":"Forbidden","code":403}')


def live_pool(api) -> "autoscaler.Pool":
    pool = autoscaler.Pool.__new__(autoscaler.Pool)  # without HTCondor's bindings: only create() is used
    pool.api, pool.namespace, pool.instance = api, "ns", "htcondor"
    pool.policy, pool.check_secret = POLICY_NAME, "htcondor-autoscaler-token"
    return pool


def test_a_burst_worker_is_created_once_the_policy_refuses_the_same_job_mounting_another_secret():
    api = FakeAPI(autoscaler.APIError("POST", "/jobs", 403, REFUSED))
    assert live_pool(api).create(DEFAULT) == "htcondor-worker-burst-x"
    (_, (_, check_path, check), (_, create_path, created)) = api.calls
    assert check_path.endswith("/jobs?dryRun=All") and create_path.endswith("/jobs")
    # The check is the very Job created, with the autoscaler's own token Secret mounted too.
    assert check["spec"]["template"]["spec"]["volumes"] == [
        {"name": "admission-check", "secret": {"secretName": "htcondor-autoscaler-token"}}]
    assert "volumes" not in created["spec"]["template"]["spec"]
    assert {**check, "spec": {**check["spec"], "template": created["spec"]["template"]}} == created


@pytest.mark.parametrize("answer", [None, autoscaler.APIError("POST", "/jobs", 403, REFUSED.replace(
    POLICY_NAME, "another-policy")), autoscaler.APIError("POST", "/jobs", 403, '{"message": "jobs.batch is '
                                                        'forbidden: User cannot create resource"}')])
def test_no_burst_worker_while_the_policy_is_not_what_refuses_the_check(answer):
    """Admitted (the policy deleted, or not enforced), or refused by anything else: nothing
    is created, and the failure says why."""
    api = FakeAPI(answer)
    with pytest.raises(autoscaler.AdmissionNotEnforced if answer is None else autoscaler.APIError) as raised:
        live_pool(api).create(DEFAULT)
    assert [path for _, path, _ in api.calls if not path.endswith("dryRun=All") and "/jobs" in path] == []
    if answer is None:
        assert f"the admission policy {POLICY_NAME} is not in force" in str(raised.value)
        assert "htcondor-autoscaler-token" in str(raised.value)
