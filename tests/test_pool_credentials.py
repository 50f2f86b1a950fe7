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
    address_of, advertise, authorizations, denied_to, files_holding, token_subjects,
)
from tests.test_emulated_pool import (
    CM, SCHEDD, SERVICE_HOST, WORKER, ads, expected_ads, log_size, refused, the, wait_for_ads,
)

SUBMIT, EXECUTE = (f"{TOKEN_HOLDERS[r].user}@{SERVICE_HOST}" for r in ("schedd", "worker"))
CM_DAEMONS = "condor@password"


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
    table = authorizations(worker, address_of(worker, "master", cm.name))
    assert {level for level, who in table.items() if who} == {"READ", "ADVERTISE_MASTER", "ADVERTISE_STARTD"}
    assert set(table.values()) == {EXECUTE, None}
    table = authorizations(worker, address_of(worker, "collector", f"HTCondor on Kubernetes@{cm.name}"))
    assert {level for level, who in table.items() if who} == {"READ", "ADVERTISE_MASTER", "ADVERTISE_STARTD"}


def test_a_worker_cannot_turn_off_the_schedd_or_the_central_manager(pool):
    worker = the(pool, WORKER)
    for daemon, name in (("schedd", the(pool, SCHEDD).name), ("master", the(pool, CM).name)):
        off = worker.exec(["condor_off", "-addr", address_of(worker, daemon, name), *(
            ["-schedd"] if daemon == "schedd" else [])], timeout=60)
        assert off.returncode != 0 and "Can't send Kill-Daemon command" in off.stdout + off.stderr, off
    # The schedd cannot even check a worker's token (it holds no key): nothing reaches it.
    schedd_table = authorizations(worker, address_of(worker, "schedd", the(pool, SCHEDD).name))
    assert set(schedd_table.values()) == {None}
    assert ("Scheduler", the(pool, SCHEDD).name) in ads(pool) and ("DaemonMaster", the(pool, CM).name) in ads(pool)


def test_a_token_minted_from_another_pools_key_is_refused(pool):
    worker = the(pool, WORKER)
    foreign = idtokens.mint("another-pools-password", SERVICE_HOST, EXECUTE, TOKEN_HOLDERS["worker"].scopes)
    written = worker.exec(["sh", "-c", "mkdir -p /tmp/foreign && base64 -d > /tmp/foreign/token && "
                                       "chmod 600 /tmp/foreign/token"],
                          stdin=base64.b64encode(foreign.encode()).decode())
    assert written.returncode == 0, written.stderr
    before = log_size(the(pool, CM), "CollectorLog")
    result = advertise(worker, "UPDATE_STARTD_AD", token_dir="/tmp/foreign")
    assert "Failed to authenticate using IDTOKENS" in result.stdout + result.stderr, result.stdout
    refused(the(pool, CM), "CollectorLog", worker.ip, after=before)
    assert not any("fake-worker" in name for _, name in ads(pool))
