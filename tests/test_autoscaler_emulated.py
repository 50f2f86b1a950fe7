"""The autoscaler of a pool that may burst, against real HTCondor in the emulator (on each
HTCondor the README names): its two tokens may only read, each where its key is known; the
SCHEDD key that signs one of them signs nothing the collector or a worker accepts; and the
request rounding it assumes is the HTCondor the workers run.

The emulator has no Kubernetes API (no ServiceAccount, Role, RoleBinding or Job), so the
autoscaler cannot decide here: its pod runs from the rendered template, with its program
replaced by one that installs its tokens as the autoscaler does (pod_token, the same code)
and waits. What those tokens may do is asked with HTCondor's own tools from inside it.
Everything else the program renders runs as it is (tests/test_kube_autoscaling.py runs the
autoscaler itself, on the real cluster)."""

import base64
import json
from dataclasses import replace

import classad2
import jwt
import pytest

from pool import idtokens
from pool.credentials import AUTOSCALER_TOKEN_HOLDER, SCHEDD_KEY_ID, TOKEN_HOLDERS, schedd_key
from pool.condor_config import TOKEN_FILE_NAME
from pool.roles.autoscaler import SCHEDD_TOKEN_FILE_NAME
from tests.conftest import running_pool
from tests.credential_checks import (
    NOT_AUTHENTICATED, Answer, address_of, advertise, answer_with_token, authorizations, denied, granted, refusal,
    refusals, write_token,
)
from tests.pod_programs import load
from tests.render import render
from tests.test_emulated_pool import (
    CM, SCHEDD, SERVICE_HOST, WORKER, ads, expected_ads, log_size, refused, the, wait_for_ads,
)

autoscaler = load("autoscaler")

# One always-on worker, one burst worker at most; no exporter, which has tests of its own.
BURST = {"workers": "1", "maxWorkers": "2", "metrics": "false"}
AUTOSCALER = "htcondor-autoscaler"
# Objects only the Kubernetes API serves, which the emulator does not run: the autoscaler's
# identity and what it may create (tests/test_kube_burst_admission.py proves those).
API_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
# The autoscaler's pod, its program replaced: its tokens installed, then nothing.
HOLD_TOKENS = ["python3", "-c", "import sys, time\nsys.path.insert(0, '/etc/htcondor-pool')\n"
                                "from pod_token import install_token\ninstall_token()\n"
                                "while True:\n    time.sleep(60)\n"]
AUTOSCALER_USER = AUTOSCALER_TOKEN_HOLDER.subject(SERVICE_HOST)
EXECUTE = TOKEN_HOLDERS["worker"].subject(SERVICE_HOST)


@pytest.fixture(scope="module")
def rendered():
    return render(BURST)


@pytest.fixture(scope="module")
def pool(rendered):
    def runs_here(resource) -> bool:
        return resource.kind not in API_KINDS and not (
            resource.kind == "Deployment" and resource.inputs["metadata"]["name"] == AUTOSCALER)

    (deployment,) = [r.inputs for r in rendered.resources if r.kind == "Deployment"
                     and r.inputs["metadata"]["name"] == AUTOSCALER]
    template = json.loads(json.dumps(deployment["spec"]["template"]))
    template["spec"]["containers"][0]["command"] = HOLD_TOKENS
    with running_pool("burst", replace(rendered, resources=[r for r in rendered.resources if runs_here(r)])) as cluster:
        cluster.run_pod(f"{AUTOSCALER}-tokens", template, namespace="htcondor")
        wait_for_ads(cluster, expected_ads(cluster))
        yield cluster


def the_autoscaler(pool):
    (pod,) = pool.pods_by_role("autoscaler")
    return pod


def collector_address(pod, pool) -> str:
    return address_of(pod, "collector", f"HTCondor on Kubernetes@{the(pool, CM).name}")


def autoscaler_tokens(rendered) -> dict[str, str]:
    (secret,) = [m for m in rendered.manifests()
                 if m["kind"] == "Secret" and m["metadata"]["name"] == f"{AUTOSCALER}-token"]
    return {name: base64.b64decode(value).decode() for name, value in secret["data"].items()}


def test_the_autoscalers_tokens_may_only_read_the_collector_and_the_schedd(pool):
    """Its pod presents whichever of its tokens each daemon can check: both read, as the
    autoscaler must (the probe works), and every other level is refused to it by name."""
    pod, schedd = the_autoscaler(pool), the(pool, SCHEDD)
    for daemon, address in (("collector", collector_address(pod, pool)),
                            ("schedd", address_of(pod, "schedd", schedd.name))):
        table = authorizations(pod, address)
        assert granted(table) == {"READ": AUTOSCALER_USER}, daemon
        assert refusals(table) == {denied(AUTOSCALER_USER)}, daemon


def test_the_autoscaler_can_neither_advertise_nor_submit(pool):
    pod, schedd = the_autoscaler(pool), the(pool, SCHEDD)
    # The collector refuses its ad, and the fake machine is not among the ads it lists.
    result = advertise(pod, "UPDATE_STARTD_AD")
    assert refusal(result.stdout + result.stderr) == denied(AUTOSCALER_USER)
    listed = ads(pool)
    assert ("Scheduler", schedd.name) in listed
    assert not any("fake-worker" in name for _, name in listed), listed
    # The schedd lets it read the queue, refuses its submit, and queues no job for it.
    address = address_of(pod, "schedd", schedd.name)

    def queue() -> list[str]:
        read = pod.exec(["condor_q", "-addr", address, "-allusers", "-af", "GlobalJobId"], timeout=60)
        assert read.returncode == 0, read.stderr
        return read.stdout.split()

    before = queue()
    submitted = pod.exec(["condor_submit", "-addr", address, "-append", "executable=/bin/true",
                          "-append", "queue", "/dev/null"], timeout=60)
    assert refusal(submitted.stdout + submitted.stderr) == denied(AUTOSCALER_USER)
    assert queue() == before


def test_each_autoscaler_token_is_accepted_only_where_its_key_is(pool, rendered):
    """The collector's token is signed with the pool's key, the schedd's with SCHEDD: each,
    presented alone, is accepted by the daemon that holds its key, and the other cannot even
    check it."""
    pod, schedd = the_autoscaler(pool), the(pool, SCHEDD)
    tokens = autoscaler_tokens(rendered)
    collector, schedd_address = collector_address(pod, pool), address_of(pod, "schedd", schedd.name)
    assert answer_with_token(pod, tokens[TOKEN_FILE_NAME], collector) == Answer(AUTOSCALER_USER)
    assert answer_with_token(pod, tokens[SCHEDD_TOKEN_FILE_NAME], schedd_address) == Answer(AUTOSCALER_USER)
    assert answer_with_token(pod, tokens[TOKEN_FILE_NAME], schedd_address) == Answer(None, NOT_AUTHENTICATED)
    assert answer_with_token(pod, tokens[SCHEDD_TOKEN_FILE_NAME], collector) == Answer(None, NOT_AUTHENTICATED)


def test_the_schedd_key_signs_no_token_the_collector_or_a_worker_accepts(pool, rendered):
    """docs/security.md: holding the SCHEDD key lets the schedd accept tokens for itself
    only. From the schedd's pod, which holds it: a token the key signs for a worker's
    identity and scopes (what a forger would want: to advertise machines) is accepted by
    the schedd, and refused by the collector, whether it names its key (SCHEDD, which the
    collector does not hold) or the pool's (POOL, whose signature it then fails); a worker
    holds no key and accepts no token at all."""
    schedd, cm, worker = the(pool, SCHEDD), the(pool, CM), the(pool, WORKER)
    key = schedd_key(rendered.password)
    signed = idtokens.mint(key, SERVICE_HOST, EXECUTE, TOKEN_HOLDERS["worker"].scopes, key_id=SCHEDD_KEY_ID)
    forged = jwt.encode(idtokens.claims(signed), idtokens.signing_key(key, SCHEDD_KEY_ID), algorithm="HS256",
                        headers={"kid": idtokens.POOL_KEY_ID})
    by_the_pool = idtokens.mint(rendered.password, SERVICE_HOST, EXECUTE, TOKEN_HOLDERS["worker"].scopes)
    # A good token, for the schedd.
    assert answer_with_token(schedd, signed, address_of(schedd, "schedd", schedd.name)) == Answer(EXECUTE)
    # The collector accepts the pool key's token from this pod (the probe works), and
    # cannot authenticate either of the SCHEDD key's; its log says so.
    collector = collector_address(schedd, pool)
    assert answer_with_token(schedd, by_the_pool, collector) == Answer(EXECUTE)
    for token in (signed, forged):
        before = log_size(cm, "CollectorLog")
        assert answer_with_token(schedd, token, collector) == Answer(None, NOT_AUTHENTICATED)
        refused(cm, "CollectorLog", schedd.ip, after=before)
    result = advertise(schedd, "UPDATE_STARTD_AD", token_dir=write_token(schedd, forged))
    assert refusal(result.stdout + result.stderr) == NOT_AUTHENTICATED
    assert not any("fake-worker" in name for _, name in ads(pool))
    # A worker's master authenticates no token, the pool key's neither: the attempts reach
    # it (its log shows them) and are refused.
    master = address_of(schedd, "master", worker.name)
    for token in (signed, by_the_pool):
        before = log_size(worker, "MasterLog")
        assert answer_with_token(schedd, token, master) == Answer(None, NOT_AUTHENTICATED)
        refused(worker, "MasterLog", schedd.ip, after=before)


# Requests either side of HTCondor's quanta (1 CPU, 128 MB, 1024 KB): CPUs, MB, KB.
REQUESTS = [[1, 1, 1], [1, 128, 1024], [2, 129, 1025], [1, 1000, 1000], [3, 1100, 5000]]
# In a pod: each request as its HTCondor carves it out of a partitionable slot, evaluated
# with its own MODIFY_REQUEST_EXPR_* (the startd's configuration: the pool's, over
# HTCondor's defaults).
CARVED = """\
import classad2, htcondor2, json, sys
carved = []
for cpus, memory, disk in json.load(sys.stdin):
    job = classad2.ClassAd({"RequestCpus": cpus, "RequestMemory": memory, "RequestDisk": disk})
    carved.append([float(classad2.ExprTree(htcondor2.param["MODIFY_REQUEST_EXPR_REQUEST" + name]).eval(job))
                   for name in ("CPUS", "MEMORY", "DISK")])
print(json.dumps(carved))
"""
# In the autoscaler's pod: each request as the autoscaler program rounds it there, with the
# modifiers it reads from its own configuration.
ASSUMED = """\
import classad2, json, sys
sys.path.insert(0, "/etc/htcondor-pool")
import autoscaler
modifiers = autoscaler.Pool(None, "", "", "", "").modifiers()
assumed = []
for cpus, memory, disk in json.load(sys.stdin):
    need = autoscaler.request(classad2.ClassAd({"RequestCpus": cpus, "RequestMemory": memory, "RequestDisk": disk}),
                              modifiers)
    assumed.append([need.cpus, need.memory_mb, need.disk_kb])
print(json.dumps(assumed))
"""


def in_pod(pod, program: str) -> list:
    result = pod.exec(["python3", "-c", program], stdin=json.dumps(REQUESTS), timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_rounding_the_autoscaler_assumes_is_the_workers_own_htcondors(pool):
    """A burst worker is sized for jobs as its startd will carve them: the autoscaler in its
    pod rounds each request as the worker's HTCondor does, and so does its fallback (its
    REQUEST_MODIFIERS, which the unit tests decide with)."""
    carved = in_pod(the(pool, WORKER), CARVED)
    assert in_pod(the_autoscaler(pool), ASSUMED) == carved
    here = [autoscaler.request(classad2.ClassAd({"RequestCpus": c, "RequestMemory": m, "RequestDisk": d}))
            for c, m, d in REQUESTS]
    assert [[need.cpus, need.memory_mb, need.disk_kb] for need in here] == carved
    assert carved[0] == [1, 128, 1024]  # the smallest request does round up
