"""Per-role credentials on real HTCondor (the emulator): only the central manager holds
the pool's signing key; the schedd and workers prove who they are with the tokens the
program minted, and can do with them only what their role does."""

import base64

import pytest

from pool import idtokens
from pool.roles import pods
from pool.credentials import TOKEN_HOLDERS
from pool.password import scramble
from tests.credential_checks import (
    NOT_AUTHENTICATED, address_of, advertise, answer_with_token, authorizations, denied, denied_to, files_holding,
    granted, refusal, refusals, token_subjects,
)
from tests.test_emulated_pool import (
    CM, SCHEDD, SERVICE_HOST, WORKER, ads, expected_ads, log_size, refused, the, wait_for_ads,
)

SUBMIT, EXECUTE = (f"{TOKEN_HOLDERS[r].user}@{SERVICE_HOST}" for r in ("schedd", "worker"))
CM_DAEMONS = "condor@password"
ADMIN = f"condor@{SERVICE_HOST}"  # administers every daemon of the pool (ALLOW_ADMINISTRATOR)


@pytest.fixture(scope="module")
def pool(emulated_pool):
    wait_for_ads(emulated_pool, expected_ads(emulated_pool))
    return emulated_pool


def test_htcondor_reads_each_minted_token_and_its_daemons_accept_them(pool):
    """condor_token_list reads the token in each pod; the pool formed with them: every
    schedd and worker ad reached the collector authenticated by its token."""
    assert token_subjects(the(pool, SCHEDD)) == [SUBMIT]
    assert token_subjects(the(pool, WORKER)) == [EXECUTE]
    identities = the(pool, CM).exec(["condor_status", "-any", "-af", "MyType", "AuthenticatedIdentity"]).stdout
    assert f"Scheduler {SUBMIT}" in identities and f"Machine {EXECUTE}" in identities


@pytest.mark.parametrize("deployment", [SCHEDD, WORKER])
def test_no_file_in_the_schedd_or_a_worker_holds_the_signing_key(pool, deployment):
    key = pool.rendered.password
    assert files_holding(the(pool, deployment), [key.encode(), scramble(key)]) == []
    # The same search finds the key where it is: the check can fail.
    assert pods.credential_file("centralManager") in files_holding(the(pool, CM), [scramble(key)])


@pytest.mark.parametrize("command,kind", [("UPDATE_SCHEDD_AD", "fake-schedd"),
                                          ("UPDATE_NEGOTIATOR_AD", "fake-negotiator"),
                                          ("UPDATE_COLLECTOR_AD", "fake-collector")])
def test_a_worker_cannot_advertise_a_scheduler_negotiator_or_collector(pool, command, kind):
    result = advertise(the(pool, WORKER), command)
    assert denied_to(result, EXECUTE), result.stdout + result.stderr
    assert not any(kind in name for _, name in ads(pool))


def test_the_schedd_cannot_advertise_a_machine(pool):
    result = advertise(the(pool, SCHEDD), "UPDATE_STARTD_AD")
    assert denied_to(result, SUBMIT), result.stdout + result.stderr
    assert not any("fake-worker" in name for _, name in ads(pool))


def test_a_workers_token_may_only_read_and_advertise_a_worker_at_the_central_manager(pool):
    worker, cm = the(pool, WORKER), the(pool, CM)
    for daemon, name in (("master", cm.name), ("collector", f"HTCondor on Kubernetes@{cm.name}")):
        table = authorizations(worker, address_of(worker, daemon, name))
        # Every level answered by the daemon, which knows the worker: what its role does
        # allowed, the rest refused to it by name.
        assert granted(table) == dict.fromkeys(("READ", "ADVERTISE_MASTER", "ADVERTISE_STARTD"), EXECUTE), daemon
        assert refusals(table) == {denied(EXECUTE)}, daemon


def test_the_schedds_token_may_only_read_and_advertise_a_schedd_at_the_central_manager(pool):
    schedd, cm = the(pool, SCHEDD), the(pool, CM)
    for daemon, name in (("master", cm.name), ("collector", f"HTCondor on Kubernetes@{cm.name}")):
        table = authorizations(schedd, address_of(schedd, daemon, name))
        assert granted(table) == dict.fromkeys(("READ", "ADVERTISE_MASTER", "ADVERTISE_SCHEDD"), SUBMIT), daemon
        assert refusals(table) == {denied(SUBMIT)}, daemon


def test_a_worker_cannot_turn_off_the_schedd_or_the_central_manager(pool):
    worker, schedd, cm = the(pool, WORKER), the(pool, SCHEDD), the(pool, CM)
    # The central manager's master knows the worker and refuses it the command.
    cm_master = address_of(worker, "master", cm.name)
    off = worker.exec(["condor_off", "-addr", cm_master], timeout=60)
    assert refusal(off.stdout + off.stderr) == denied(EXECUTE), off
    # From the same worker, to the same master, at the same level (condor_off's, ADMINISTRATOR),
    # a token that may administer the pool is allowed: the refusal is the worker token's.
    admin = idtokens.mint(pool.rendered.password, SERVICE_HOST, ADMIN, ("ADMINISTRATOR",))
    assert answer_with_token(worker, admin, cm_master, "ADMINISTRATOR").identity == ADMIN
    # A daemon is turned off by its pod's master: the schedd's holds no key, so it cannot
    # even check the worker's token; its log shows the attempt reached it.
    schedd_master = address_of(worker, "master", schedd.name)
    before = log_size(schedd, "MasterLog")
    off = worker.exec(["condor_off", "-addr", schedd_master, "-schedd"], timeout=60)
    assert refusal(off.stdout + off.stderr) == NOT_AUTHENTICATED, off  # (condor_off exits 0 all the same)
    refused(schedd, "MasterLog", worker.ip, after=before)
    table = authorizations(worker, address_of(worker, "schedd", schedd.name))
    assert granted(table) == {} and refusals(table) == {NOT_AUTHENTICATED}
    assert ("Scheduler", schedd.name) in ads(pool) and ("DaemonMaster", cm.name) in ads(pool)


def test_a_token_minted_from_another_pools_key_is_refused(pool):
    worker = the(pool, WORKER)
    foreign = idtokens.mint("another-pools-password", SERVICE_HOST, EXECUTE, TOKEN_HOLDERS["worker"].scopes)
    # Presented alone to the central manager's master, the worker's own token is accepted
    # and the foreign one refused: the master could not authenticate it.
    master = address_of(worker, "master", the(pool, CM).name)
    assert answer_with_token(worker, pool.rendered.outputs["worker_token"], master).identity == EXECUTE
    assert answer_with_token(worker, foreign, master).refused == NOT_AUTHENTICATED
    written = worker.exec(["sh", "-c", "mkdir -p /tmp/foreign && base64 -d > /tmp/foreign/token && "
                                       "chmod 600 /tmp/foreign/token"],
                          stdin=base64.b64encode(foreign.encode()).decode())
    assert written.returncode == 0, written.stderr
    before = log_size(the(pool, CM), "CollectorLog")
    result = advertise(worker, "UPDATE_STARTD_AD", token_dir="/tmp/foreign")
    assert "Failed to authenticate using IDTOKENS" in result.stdout + result.stderr, result.stdout
    refused(the(pool, CM), "CollectorLog", worker.ip, after=before)
    assert not any("fake-worker" in name for _, name in ads(pool))
