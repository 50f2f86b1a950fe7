"""Workers with `unprivilegedWorkers: true`, on real HTCondor (the emulator): they run as
the image's condor user with no capability, their jobs run as that user, and a leaving one
still drains."""

import pytest

from pool.security import CONDOR_ID
from tests.conftest import running_pool
from tests.htcondor_jobs import output, sleeper_submit, submit, wait_completed, wait_running
from tests.podsim.kubelet import wait_until
from tests.render import render
from tests.test_emulated_pool import SCHEDD, WORKER, expected_ads, the, wait_for_ads

CONFIG = {"unprivilegedWorkers": "true", "workers": "2", "workerGracePeriodSeconds": "60"}
WHOAMI = "#!/bin/sh\nsleep \"$1\"\necho \"$(id -un) $(id -u) on $(hostname)\"\n"


@pytest.fixture(scope="module")
def pool():
    with running_pool("unpriv", render(CONFIG)) as cluster:
        wait_for_ads(cluster, expected_ads(cluster))
        yield cluster


def test_unprivileged_workers_run_as_condor_with_no_capability(pool):
    for worker in pool.pods_of(WORKER):
        status = worker.exec(["sh", "-c", "for p in /proc/[0-9]*; do cat $p/status; done"]).stdout
        processes = status.split("Name:")[1:]
        assert any("condor_startd" in p for p in processes), worker.name
        for process in processes:
            fields = dict(line.split(":", 1) for line in process.splitlines()[1:] if ":" in line)
            assert set(fields["Uid"].split()) == {str(CONDOR_ID)}, process
            assert int(fields["CapEff"], 16) == int(fields["CapPrm"], 16) == 0, process


def test_their_jobs_run_as_the_condor_user_not_the_submitter(pool):
    schedd = the(pool, SCHEDD)
    (row,) = wait_completed(schedd, submit(schedd, "whoami", WHOAMI, sleeper_submit(0, tag="whoami")), 1)
    assert row[1:3] == ["4", "0"], row
    assert output(schedd, "whoami.out.0").split()[:2] == ["condor", str(CONDOR_ID)]


def test_a_leaving_unprivileged_worker_still_drains(pool):
    """Its preStop hook, as the condor user, still shuts the startd down peacefully."""
    schedd = the(pool, SCHEDD)
    job = submit(schedd, "long", WHOAMI, sleeper_submit(15, tag="long"))
    (_, host), = wait_running(schedd, job)
    leaving = host.split("@", 1)[1]
    pool.delete_pod(leaving)
    (row,) = wait_completed(schedd, job, 1, timeout=90)
    assert row[1:3] == ["4", "0"] and row[4] == "1", row  # finished there, never restarted
    assert output(schedd, "long.out.0").split()[-1] == leaving
    wait_until(lambda: leaving not in pool.pods, 60, 0.5, f"{leaving} to be gone")
