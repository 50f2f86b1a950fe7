"""Submitting and following jobs in an emulated pool, as the user `submitter` on the schedd."""

import re

from tests.podsim.kubelet import wait_until

HOME = "/home/submitter"
USER = "submitter"


class QueryFailed(AssertionError):
    """An HTCondor query that could not run (its tool failed): never to be read as "nothing
    there", or a refusal test would pass without asking anything."""


def when_answered(query):
    """`query()`, or None while it fails: for polling something that may not answer yet (a
    central manager being replaced)."""
    try:
        return query()
    except QueryFailed:
        return None


def submit(schedd, name: str, script: str, submit_text: str) -> str:
    """Write `name`.sh and `name`.sub in submitter's home, submit; returns the cluster id."""
    for filename, text, mode in [(f"{name}.sh", script, "755"), (f"{name}.sub", submit_text, "644")]:
        written = schedd.exec(["sh", "-c", f"cat > {HOME}/{filename} && chmod {mode} {HOME}/{filename}"],
                              user=USER, stdin=text)
        assert written.returncode == 0, written.stderr
    submitted = schedd.exec(["condor_submit", f"{name}.sub"], user=USER)
    assert submitted.returncode == 0, submitted.stderr
    return re.search(r"submitted to cluster (\d+)", submitted.stdout).group(1)


def job_rows(schedd, command: str, cluster_id: str, *attributes: str) -> list[list[str]]:
    """`condor_q` or `condor_history` of a cluster: one row of attribute values per job. A
    query that fails raises QueryFailed: no rows must mean "no such jobs", never "no answer"
    (queue_is_empty would otherwise pass on a schedd that does not answer)."""
    result = schedd.exec([command, cluster_id, "-af", *attributes], user=USER)
    if result.returncode != 0:
        raise QueryFailed(f"{command} {cluster_id} failed ({result.returncode}): {result.stderr.strip()}")
    return [line.split() for line in result.stdout.splitlines() if line.strip()]


def wait_running(schedd, cluster_id: str, count: int = 1, timeout: float = 120) -> list[list[str]]:
    """Wait until `count` jobs of the cluster run; returns their (ProcId, RemoteHost)."""
    def running():  # a query that fails meanwhile (a schedd being replaced) is "not yet"
        rows = when_answered(lambda: job_rows(schedd, "condor_q", cluster_id, "ProcId", "JobStatus", "RemoteHost"))
        if rows is None:
            return None
        rows = [r for r in rows if r[1] == "2"]
        return [[r[0], r[2]] for r in rows] if len(rows) >= count else None
    return wait_until(running, timeout, 0.5, f"{count} job(s) of cluster {cluster_id} to run")


def wait_completed(schedd, cluster_id: str, count: int, timeout: float = 240) -> list[list[str]]:
    """Wait until `count` jobs of the cluster are in the history; returns (ProcId, JobStatus,
    ExitCode, LastRemoteHost, NumJobStarts) per job."""
    def done():
        rows = when_answered(lambda: job_rows(schedd, "condor_history", cluster_id, "ProcId", "JobStatus",
                                              "ExitCode", "LastRemoteHost", "NumJobStarts"))
        return rows if rows is not None and len(rows) >= count else None
    try:
        return wait_until(done, timeout, 1, f"{count} job(s) of cluster {cluster_id} to complete")
    except TimeoutError:
        analysis = schedd.exec(["condor_q", "-better-analyze", cluster_id]).stdout  # as root: see test_job_confinement
        raise TimeoutError(f"jobs of cluster {cluster_id} did not complete:\n{analysis[-3000:]}") from None


def output(schedd, filename: str) -> str:
    return schedd.exec(["cat", f"{HOME}/{filename}"], user=USER).stdout


def queue_is_empty(schedd, cluster_id: str) -> bool:
    return not job_rows(schedd, "condor_q", cluster_id, "ProcId")


# A job that sleeps its argument's seconds, then says where it ran.
SLEEPER = "#!/bin/sh\nsleep \"$1\"\necho \"slept $1s on $(hostname)\"\n"


def sleeper_submit(seconds: int, extra: str = "", count: int = 1, tag: str = "job", arguments: str = "") -> str:
    """A submit file for `tag`.sh with `seconds` as its first argument (and `arguments` after)."""
    return f"""\
executable = {tag}.sh
arguments = {f"{seconds} {arguments}".strip()}
output = {tag}.out.$(Process)
error = {tag}.err.$(Process)
log = {tag}.log
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
request_cpus = 1
request_memory = 64
{extra}
queue {count}
"""


# A job that runs until told to finish, for a test whose job must outlast something of
# unknown length (a `pulumi up` under load) yet end within a bound after it (a leaving
# worker's retirement time): a sleep of fixed length would race both. It asks the schedd's
# side, through chirp (the starter's I/O proxy, then the shadow), for the file TAG.finish
# in the submitter's home, every second for at most its argument's seconds, and fails if
# never told. (Not `condor_qedit` of an attribute: chirp's get_job_attr reads the shadow's
# copy of the job ad, which an edit of a running job does not reach.)
FINISH_WHEN_TOLD = """#!/bin/sh
i=0
while [ "$i" -lt "$1" ]; do
  if /usr/libexec/condor/condor_chirp fetch "$2" - >/dev/null 2>&1; then
    echo "told to finish after ${i}s on $(hostname)"; exit 0
  fi
  sleep 1; i=$((i + 1))
done
echo "never told to finish in $1s" >&2; exit 3
"""


def submit_finish_when_told(schedd, tag: str, seconds: int, extra: str = "") -> str:
    """Submit one FINISH_WHEN_TOLD job (no flag left from before); returns its cluster id."""
    cleared = schedd.exec(["rm", "-f", f"{HOME}/{tag}.finish"], user=USER)
    assert cleared.returncode == 0, cleared.stderr
    return submit(schedd, tag, FINISH_WHEN_TOLD,
                  sleeper_submit(seconds, f"want_io_proxy = true\n{extra}", tag=tag, arguments=f"{tag}.finish"))


def tell_to_finish(schedd, tag: str) -> None:
    told = schedd.exec(["touch", f"{HOME}/{tag}.finish"], user=USER)
    assert told.returncode == 0, told.stderr


# ---- fair share: the negotiator's accounting, as condor_userprio shows it ----------------
def accounting_submit(seconds: int, group: str, user: str, count: int = 1, tag: str = "job") -> str:
    """A sleeper charged to `group.user`: one submitter runs jobs for several accounting
    users, each with a priority of its own, as HTCondor's accounting groups do."""
    return sleeper_submit(seconds, f"accounting_group = {group}\naccounting_group_user = {user}",
                          count=count, tag=tag)


def user_priorities(cm) -> dict[str, tuple[float, float]]:
    """(accumulated usage in seconds, effective priority) of each accounting user, from
    `condor_userprio -allusers -l` in the central-manager pod; raises QueryFailed if the
    negotiator does not answer."""
    result = cm.exec(["condor_userprio", "-allusers", "-l"], timeout=60)
    if result.returncode != 0:
        raise QueryFailed(f"condor_userprio failed ({result.returncode}): {result.stderr.strip()}")
    # HTCondor 23 prints one ad with numbered attributes (Name1, AccumulatedUsage1, ...);
    # HTCondor 25 one ad per user, separated by blank lines.
    users = {}
    for block in re.split(r"\n\s*\n", result.stdout):
        attributes = dict(re.findall(r"^(\w+) = (.*)$", block, re.MULTILINE))
        for key, value in attributes.items():
            match = re.fullmatch(r"Name(\d*)", key)
            index = match.group(1) if match else None
            if match and f"AccumulatedUsage{index}" in attributes and f"IsAccountingGroup{index}" in attributes \
                    and attributes[f"IsAccountingGroup{index}"] == "false":
                users[value.strip('"')] = (float(attributes[f"AccumulatedUsage{index}"]),
                                           float(attributes[f"Priority{index}"]))
    return users


def wait_for_accounting_after(cm, when: int, timeout: float = 120) -> None:
    """Until the negotiator's accountant has charged usage up to after `when` (epoch
    seconds): its `LastUpdate`, as condor_userprio shows it, is later. It updates at each
    negotiation cycle (NEGOTIATOR_INTERVAL); the collector's copy of the negotiator's ad
    would lag by up to NEGOTIATOR_UPDATE_INTERVAL."""
    def charged():
        result = cm.exec(["condor_userprio", "-allusers", "-l"], timeout=60)
        updates = [int(t) for t in re.findall(r"^LastUpdate = (\d+)$", result.stdout, re.MULTILINE)]
        return result.returncode == 0 and updates and max(updates) > when
    wait_until(charged, timeout, 1, f"the accountant to charge usage past {when}")
