"""Fair share outlives the central manager (real HTCondor in the emulator): two accounting
users run jobs, `condor_userprio` shows their usage apart, and a replaced central manager
(its pod deleted, or rolled by a password rotation) shows the same accumulated usage and
priorities, its negotiator reading them back from its volume."""

import time

import pytest

from tests.conftest import REPORTS, running_pool
from tests.htcondor_jobs import (
    SLEEPER, accounting_submit, job_rows, submit, user_priorities, wait_completed,
    wait_for_accounting_after, when_answered,
)
from tests.podsim.kubelet import wait_until
from tests.render import render
from tests.test_emulated_pool import CM, SCHEDD, SERVICE_HOST, the

CONFIG = {"workers": "1", "resources": '{"worker": {"cpu": "2", "memory": "1Gi"}}'}
ALICE, BOB = f"physics.alice@{SERVICE_HOST}", f"physics.bob@{SERVICE_HOST}"


def accounted_usage(cluster) -> dict[str, tuple[float, float]]:
    """Alice runs two 30 s jobs, Bob one 2 s job; once the accountant has charged past their
    completion, the usage and priority of each, as condor_userprio shows them. (It charges
    what runs at each negotiation cycle for the time since the last, so a short job is
    charged a whole cycle.)"""
    schedd = the(cluster, SCHEDD)
    alice = submit(schedd, "alice", SLEEPER, accounting_submit(30, "physics", "alice", count=2, tag="alice"))
    bob = submit(schedd, "bob", SLEEPER, accounting_submit(2, "physics", "bob", tag="bob"))
    wait_completed(schedd, alice, 2), wait_completed(schedd, bob, 1)
    completed = max(int(row[0]) for cluster_id in (alice, bob)
                    for row in job_rows(schedd, "condor_history", cluster_id, "CompletionDate"))
    wait_for_accounting_after(the(cluster, CM), completed)
    return user_priorities(the(cluster, CM))


def same_accounting(before: dict, after: dict) -> None:
    """The same users with the same accumulated usage, and priorities within what an hour of
    decay (PRIORITY_HALFLIFE is a day) could change."""
    assert set(after) == set(before), (before, after)
    for user, (usage, priority) in before.items():
        assert after[user][0] == pytest.approx(usage, abs=0.5), (user, before, after)
        assert after[user][1] == pytest.approx(priority, rel=0.05), (user, before, after)


@pytest.fixture(scope="module")
def pool():
    with running_pool("fair", render(CONFIG)) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def accounted(pool):
    return accounted_usage(pool)


def test_two_users_usage_is_accounted_apart(accounted):
    assert {ALICE, BOB} <= set(accounted), accounted
    (alice_usage, alice_priority), (bob_usage, bob_priority) = accounted[ALICE], accounted[BOB]
    assert alice_usage >= 40 and 1 <= bob_usage < alice_usage, accounted
    assert alice_priority > bob_priority, accounted  # more usage: a worse (higher) priority


def replacement_answers(cluster, old: str) -> dict:
    """The accounting of the central manager that replaced pod `old`, once it answers."""
    def answered():
        pods = [p for p in cluster.pods_of(CM) if p.name != old and p.ready]
        return pods and when_answered(lambda: user_priorities(pods[0]))
    return wait_until(answered, 180, 1, "the replacement's negotiator to answer")


def test_a_replaced_central_manager_keeps_every_users_usage_and_priority(pool, accounted):
    old = the(pool, CM)
    started = time.monotonic()
    pool.delete_pod(old.name)
    after = replacement_answers(pool, old.name)
    same_accounting(accounted, after)
    REPORTS.append(f"fair share: the replacement central manager answered with every user's usage "
                   f"{time.monotonic() - started:.1f}s after the old pod was deleted")


def test_a_password_rotation_keeps_every_users_usage_and_priority(pool, accounted):
    old = the(pool, CM)
    pool.apply_rendered(render({**CONFIG, "passwordVersion": "2"}))  # every pod rolls
    assert old.name not in pool.pods
    same_accounting(accounted, replacement_answers(pool, old.name))
