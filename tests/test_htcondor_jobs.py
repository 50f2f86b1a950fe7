"""The job helpers the emulator and real-cluster tests share (tests/htcondor_jobs.py): a
query that fails is never read as "no jobs", and waits poll through one."""

import subprocess

import pytest

from tests.htcondor_jobs import QueryFailed, job_rows, queue_is_empty, wait_running


class Schedd:
    """A schedd pod whose condor_q answers with the given results, one per call."""

    def __init__(self, *results: tuple[int, str]):
        self.results = list(results)
        self.calls = 0

    def exec(self, command, user=None, timeout=60, stdin=None):
        self.calls += 1
        code, out = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        return subprocess.CompletedProcess(command, code, out, "" if code == 0 else "Failed to connect to schedd")


def test_a_failed_query_raises_instead_of_returning_no_jobs():
    with pytest.raises(QueryFailed, match="condor_q 7 failed \\(1\\): Failed to connect to schedd"):
        job_rows(Schedd((1, "")), "condor_q", "7", "ProcId")
    with pytest.raises(QueryFailed):
        queue_is_empty(Schedd((1, "")), "7")
    # The probe: an answering schedd with an empty queue is empty, one with a job is not.
    assert queue_is_empty(Schedd((0, "")), "7")
    assert not queue_is_empty(Schedd((0, "0\n")), "7")


def test_a_wait_polls_through_a_query_that_fails_meanwhile():
    schedd = Schedd((1, ""), (0, "0 1 \n"), (0, "0 2 slot1@worker\n"))
    assert wait_running(schedd, "7", timeout=10) == [["0", "slot1@worker"]]
    assert schedd.calls == 3
