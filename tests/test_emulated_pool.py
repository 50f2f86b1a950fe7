"""The walkthrough, replayed on real HTCondor daemons running the program's own rendered
pods in the emulator (tests/podsim). Assertions are on what HTCondor reports."""

import json
import re
import time

import pytest

from pool.condor_config import CONDOR_PORT, LOCAL_DIR
from pool.defaults import METRICS_PORT
from pool.security import CONDOR_ID
from tests.conftest import REPORTS
from tests.htcondor_jobs import QueryFailed, when_answered
from tests.network_checks import connections
from tests.podsim.kubelet import wait_until
from tests.podsim.rootfs import HTCONDOR_SERIES, suite
from tests.podsim.sandbox import CAPABILITIES
from tests.render import render
from tests.test_least_privilege import README_CAPABILITIES

CM, SCHEDD, WORKER = "htcondor-central-manager", "htcondor-schedd", "htcondor-worker"
METRICS = "htcondor-metrics"  # the metrics exporter (stack config `metrics`, on by default)
SERVICE_HOST = "htcondor-central-manager.htcondor.svc.cluster.local"


def the(cluster, deployment):
    (pod,) = cluster.pods_of(deployment)
    return pod


def ads(cluster) -> set[tuple[str, str]]:
    """(MyType, Name) of every ad `condor_status -any` shows in the central-manager pod; a
    query that fails raises QueryFailed."""
    result = the(cluster, CM).exec(["condor_status", "-any", "-af", "MyType", "Name"], timeout=30)
    if result.returncode != 0:
        raise QueryFailed(f"condor_status -any failed ({result.returncode}): {result.stderr.strip()}")
    return {tuple(line.split(None, 1)) for line in result.stdout.splitlines() if line.strip()}


def expected_ads(cluster) -> set[tuple[str, str]]:
    cm, schedd = the(cluster, CM).name, the(cluster, SCHEDD).name
    want = {("Negotiator", cm), ("DaemonMaster", cm), ("Scheduler", schedd), ("DaemonMaster", schedd)}
    for worker in cluster.pods_of(WORKER):
        want |= {("DaemonMaster", worker.name), ("Machine", f"slot1@{worker.name}")}
    return want


def log_size(pod, log: str) -> int:
    path = pod.local_dir(LOCAL_DIR) / "log" / log
    return path.stat().st_size if path.exists() else 0


def log_text(pod, log: str, after: int = 0) -> str:
    """`pod`'s HTCondor `log` past byte `after` (see log_size); "" if there is none yet. It
    stays readable once the pod is gone, until the cluster's teardown."""
    path = pod.local_dir(LOCAL_DIR) / "log" / log
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(after)
        return f.read().decode(errors="replace")


def refused(pod, log: str, peer_ip: str, timeout=60, after: int = 0) -> str:
    """Wait for `pod`'s HTCondor `log` to record, past byte `after` (see log_size), that
    `peer_ip` failed authentication that the command required, in either of the daemons'
    wordings; returns that line."""
    ip = re.escape(peer_ip)
    marker = re.compile(rf"DC_AUTHENTICATE: (required authentication of {ip} failed|authentication "
                        rf"of <{ip}:\d+> did not result in a valid mapped user name)")

    def line():
        return next((entry for entry in log_text(pod, log, after).splitlines() if marker.search(entry)), None)

    return wait_until(line, timeout, 0.2, f"{pod.name}'s {log} to refuse {peer_ip}")


def wait_for_ads(cluster, want, timeout=90):
    seen = {}

    def complete():
        answer = when_answered(lambda: ads(cluster))
        if answer is not None:
            seen["have"] = answer
        return answer if answer is not None and want <= answer else None

    try:
        return wait_until(complete, timeout, 0.5, "ads")
    except TimeoutError:
        missing, have = sorted(want - seen.get("have", set())), sorted(seen.get("have", set()))
        raise TimeoutError(f"after {timeout}s these ads are missing: {missing}; present: {have}") from None


def test_the_pool_forms_with_every_daemon(emulated_pool):
    have = wait_for_ads(emulated_pool, expected_ads(emulated_pool))
    assert any(kind == "Collector" for kind, _ in have)


def test_every_pod_runs_the_htcondor_its_test_pass_names(emulated_pool):
    """The first pass of .ci/run runs HTCondor 23.9 (trixie), the second 25.x (sid): each
    asks HTCondor itself, in every pod, so that one root filesystem cannot pass as the other."""
    series = HTCONDOR_SERIES[suite()]
    for pod in emulated_pool.pods.values():
        result = pod.exec(["condor_version"])
        assert result.returncode == 0, result.stderr
        version = result.stdout.split()[1]
        assert version.startswith(series), (pod.name, version, series)


def test_the_slot_has_the_worker_containers_cpus_and_memory(emulated_pool):
    wait_for_ads(emulated_pool, expected_ads(emulated_pool))
    result = the(emulated_pool, CM).exec(
        ["condor_status", "-af", "PartitionableSlot", "TotalSlotCpus", "TotalSlotMemory"])
    assert result.stdout.split() == ["true", "2", "1536"]  # the container's limits, not the host's


def test_all_probes_pass_on_a_formed_pool(emulated_pool):
    for pod in emulated_pool.pods.values():
        container = pod.container
        for probe in ("readinessProbe", "livenessProbe"):
            assert pod.probe(container[probe]), f"{probe} of {pod.name}: {pod.probe_log[-1:]}"


SIGNAL_DAEMON = 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = "$1" ] && kill -"$2" "${p#/proc/}"; done; true'


@pytest.mark.parametrize("deployment,daemon", [(SCHEDD, "condor_schedd"), (CM, "condor_collecto"),
                                               (WORKER, "condor_startd")])
def test_a_daemon_too_busy_to_answer_is_not_ready_but_not_restarted(emulated_pool, deployment, daemon):
    """Readiness asks the daemon a real query, liveness only the pod's condor_master: a
    daemon that cannot answer (stopped here, as one swamped with work answers too late)
    fails readiness and passes liveness, so the kubelet takes it out of service instead of
    restarting it."""
    pod = the(emulated_pool, deployment)
    readiness, liveness = pod.container["readinessProbe"], pod.container["livenessProbe"]
    assert pod.probe(readiness) and pod.probe(liveness)  # both pass on a healthy pod
    restarts = pod.restarts
    pod.exec(["sh", "-c", SIGNAL_DAEMON, "sh", daemon, "STOP"])
    try:
        assert not pod.probe(readiness), f"{daemon} was stopped, yet its readiness query answered"
        assert pod.probe(liveness), pod.probe_log[-1:]
    finally:
        pod.exec(["sh", "-c", SIGNAL_DAEMON, "sh", daemon, "CONT"])
    wait_until(lambda: pod.probe(readiness), 60, 1, f"{daemon} to answer again")
    assert pod.restarts == restarts


def test_every_daemon_runs_with_only_its_roles_privileges(emulated_pool):
    """The formed pool runs confined as its pods' securityContexts say: HTCondor's processes
    hold no capability outside the role's set, may gain none, and cannot write the image."""
    wait_for_ads(emulated_pool, expected_ads(emulated_pool))
    numbers = {name: number for number, name in enumerate(CAPABILITIES)}
    for pod in emulated_pool.pods.values():
        role = {"central-manager": "centralManager"}.get(pod.role, pod.role)
        allowed = sum(1 << numbers[c] for c in README_CAPABILITIES[role])
        status = pod.exec(["sh", "-c", "for p in /proc/[0-9]*; do cat $p/status; done"]).stdout
        processes = status.split("Name:")[1:]
        # HTCondor's daemons under their master; the exporter, a Python program.
        main = "python3" if role == "metrics" else "condor_master"
        assert any(p.split()[0] == main for p in processes), pod.name
        for process in processes:
            fields = dict(line.split(":", 1) for line in process.splitlines()[1:] if ":" in line)
            for key in ("CapBnd", "CapPrm", "CapEff"):
                assert int(fields[key], 16) & ~allowed == 0, (pod.name, process.split()[0], key)
            assert fields["NoNewPrivs"].strip() == "1", (pod.name, process.split()[0])
            if role in ("centralManager", "metrics"):  # as the condor user, real, effective and saved
                assert set(fields["Uid"].split()) == set(fields["Gid"].split()) == {str(CONDOR_ID)}, process
        written = pod.exec(["touch", "/usr/share/written-by-a-pod"])
        assert "Read-only file system" in written.stderr, (pod.name, written)


def test_scaling_to_two_workers_adds_a_second_slot(emulated_pool):
    emulated_pool.scale(WORKER, 2)
    emulated_pool.wait_available(WORKER, 60)
    want = expected_ads(emulated_pool)
    assert len({name for kind, name in want if kind == "Machine"}) == 2
    wait_for_ads(emulated_pool, want)


JOB_SCRIPT = "#!/bin/sh\necho \"$(( $1 * $1 ))\"\n"
SUBMIT = """\
executable = square.sh
arguments = $(Process)
output = out.$(Process)
error = err.$(Process)
log = jobs.log
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
request_cpus = 1
request_memory = 64
queue 20
"""


def test_twenty_jobs_by_a_normal_user_run_to_completion(emulated_pool):
    schedd = the(emulated_pool, SCHEDD)
    home = "/home/submitter"
    for name, text, mode in [("square.sh", JOB_SCRIPT, "755"), ("jobs.sub", SUBMIT, "644")]:
        assert schedd.exec(["sh", "-c", f"cat > {home}/{name} && chmod {mode} {home}/{name}"],
                           user="submitter", stdin=text).returncode == 0
    submitted = schedd.exec(["condor_submit", "jobs.sub"], user="submitter")
    assert submitted.returncode == 0, submitted.stderr
    cluster_id = re.search(r"submitted to cluster (\d+)", submitted.stdout).group(1)

    def done():
        history = schedd.exec(["condor_history", cluster_id, "-af", "ProcId", "JobStatus", "ExitCode",
                               "LastRemoteHost"], user="submitter").stdout.split("\n")
        rows = [line.split() for line in history if line.strip()]
        return rows if len(rows) == 20 else None

    try:
        rows = wait_until(done, 240, 1, "20 jobs to complete")
    except TimeoutError:
        print(schedd.exec(["condor_q", "-better-analyze", cluster_id], user="submitter").stdout[-3000:])
        raise
    assert all(status == "4" and code == "0" for _, status, code, _ in rows)
    workers = {p.name for p in emulated_pool.pods_of(WORKER)}
    assert {host.split("@", 1)[1] for *_, host in rows} <= workers
    for proc in range(20):
        out = schedd.exec(["cat", f"{home}/out.{proc}"], user="submitter").stdout
        assert out == f"{proc * proc}\n", proc


def start_times(cluster, cm_pod: str) -> dict[tuple[str, str], str]:
    """DaemonStartTime of every ad of a daemon outside the central manager's pod (the
    schedd's and workers' masters, schedd and startds), by (MyType, Name)."""
    result = the(cluster, CM).exec(["condor_status", "-any", "-af", "MyType", "Name", "DaemonStartTime"], timeout=30)
    if result.returncode != 0:
        raise QueryFailed(f"condor_status -any failed: {result.stderr.strip()}")
    rows = [line.rsplit(None, 1) for line in result.stdout.splitlines() if line.strip()]
    return {tuple(kind_name.split(None, 1)): started for kind_name, started in rows
            if cm_pod not in kind_name and kind_name.split()[0] in ("DaemonMaster", "Scheduler", "StartD", "Machine")}


def test_a_killed_central_manager_is_replaced_and_the_pool_heals(emulated_pool):
    old = the(emulated_pool, CM)
    wait_for_ads(emulated_pool, expected_ads(emulated_pool))
    before = start_times(emulated_pool, old.name)
    assert {kind for kind, _ in before} == {"DaemonMaster", "Scheduler", "StartD", "Machine"}, before
    emulated_pool.delete_pod(old.name)
    new = wait_until(lambda: [p for p in emulated_pool.pods_of(CM) if p.name != old.name], 30, 0.1,
                     "a replacement central manager")[0]
    assert new.ip != old.ip
    started = new.created
    first = wait_until(lambda: when_answered(lambda: ads(emulated_pool)), 60, 0.1, "the new collector to answer")
    first_answer = time.monotonic()
    # A fresh collector knows only its own pod's daemons: nothing of the pod it replaced,
    # and the schedd and workers have not found it yet.
    others_at_first = sorted(f"{kind} {name}" for kind, name in first
                             if kind != "Accounting" and new.name not in name)
    assert not others_at_first, f"the new collector's first answer lists {others_at_first}"
    healed = wait_for_ads(emulated_pool, expected_ads(emulated_pool) | {
        ("Collector", f"HTCondor on Kubernetes@{new.name}")}, timeout=120)
    took = time.monotonic() - started
    REPORTS.append(f"central-manager replacement: the new collector answered "
                   f"{first_answer - started:.1f}s after its pod started, knowing only its own "
                   f"{len(first)} ads; all {len(healed)} ads back {took:.1f}s after it started")
    assert not any(old.name in name for _, name in healed)
    # Found again without a restart: the same schedd and worker daemons, started when they
    # were before the central manager went. (A startd's own StartD ad may come back a little
    # after its slots'.)
    def all_back():
        now = when_answered(lambda: start_times(emulated_pool, new.name)) or {}
        return now if set(now) >= set(before) else None
    assert wait_until(all_back, 60, 1, "every daemon's ad") == before


def outside_host_config(with_token: bool, daemons: str = "MASTER, STARTD") -> str:
    """An outside host's own configuration, as its admin writes it from the README."""
    return f"""\
include ifexist : /etc/condor/condor_config
LOCAL_CONFIG_DIR =
LOCAL_CONFIG_FILE =
CONDOR_HOST = {SERVICE_HOST}
UID_DOMAIN = {SERVICE_HOST}
TRUST_DOMAIN = $(UID_DOMAIN)
LOCAL_DIR = /var/lib/outside
LOG = $(LOCAL_DIR)/log
SPOOL = $(LOCAL_DIR)/spool
EXECUTE = $(LOCAL_DIR)/execute
LOCK = $(LOCAL_DIR)/lock
RUN = $(LOCAL_DIR)/run
SEC_DEFAULT_AUTHENTICATION = REQUIRED
SEC_DEFAULT_ENCRYPTION = REQUIRED
SEC_DEFAULT_INTEGRITY = REQUIRED
SEC_DEFAULT_AUTHENTICATION_METHODS = {"FS, IDTOKENS" if with_token else "FS"}
SEC_TOKEN_DIRECTORY = $(LOCAL_DIR)/tokens.d
ALLOW_READ = *
ALLOW_WRITE = *
DAEMON_LIST = {daemons}
UPDATE_INTERVAL = 10
SCHEDD_INTERVAL = 10
RunBenchmarks = False
MOUNT_UNDER_SCRATCH =
LINUX_KERNEL_TUNING_SCRIPT =
DISCARD_SESSION_KEYRING_ON_STARTUP = False
"""


# The admin stores the token the stack output gives (root-owned, 0600), then starts HTCondor.
START_MASTER = ("mkdir -p /var/lib/outside/log /var/lib/outside/spool /var/lib/outside/execute "
                "/var/lib/outside/lock /var/lib/outside/run /var/lib/outside/tokens.d && "
                "chown condor: /var/lib/outside/log /var/lib/outside/spool /var/lib/outside/execute "
                "/var/lib/outside/lock /var/lib/outside/run && "
                "{prepare} condor_master -f & wait")
STORE_TOKEN = ('printf "%s\\n" "$POOL_TOKEN" > /var/lib/outside/tokens.d/pool && '
               "chmod 600 /var/lib/outside/tokens.d/pool &&")


def test_an_outside_worker_given_the_worker_token_joins(emulated_pool):
    """The `worker_token` stack output is all an outside execute node needs."""
    emulated_pool.run_host(
        "outside-worker", {"condor_config": outside_host_config(with_token=True)},
        ["/bin/sh", "-c", START_MASTER.format(prepare=STORE_TOKEN)],
        env={"CONDOR_CONFIG": "/etc/outside/condor_config",
             "POOL_TOKEN": emulated_pool.rendered.outputs["worker_token"]})
    wait_for_ads(emulated_pool, {("Machine", "slot1@outside-worker")}, timeout=60)


def test_an_outside_submit_host_given_the_submit_token_runs_jobs_in_the_pool(emulated_pool):
    """The `submit_token` stack output is all an outside submit node needs: it advertises
    its schedd with it, and the negotiator and the workers reach that schedd through the
    match's own security sessions, so it never needs the pool's key."""
    host = emulated_pool.run_host(
        "outside-submit", {"condor_config": outside_host_config(with_token=True, daemons="MASTER, SCHEDD")},
        ["/bin/sh", "-c", START_MASTER.format(prepare=STORE_TOKEN)],
        env={"CONDOR_CONFIG": "/etc/outside/condor_config",
             "POOL_TOKEN": emulated_pool.rendered.outputs["submit_token"]})
    wait_for_ads(emulated_pool, {("Scheduler", "outside-submit")}, timeout=60)
    wrote = host.exec(["sh", "-c", "cd && printf 'executable=/bin/hostname\\noutput=out\\nlog=log\\n"
                                   "should_transfer_files=YES\\nqueue\\n' > job && condor_submit job"],
                      user="submitter", timeout=60)
    assert wrote.returncode == 0, wrote.stderr
    done = host.exec(["sh", "-c", "cd && condor_wait -wait 120 log && cat out"], user="submitter", timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] in {p.name for p in emulated_pool.pods_of(WORKER)} | {"outside-worker"}


def test_a_worker_with_a_token_from_another_pools_key_never_joins(emulated_pool):
    """The real worker pod template, with only its token minted from another pool's key."""
    foreign = next(m for m in render(password="not-the-pool-password").manifests()
                   if m["kind"] == "Secret" and m["metadata"]["name"] == "htcondor-worker-token")
    emulated_pool.secrets["foreign-worker-token"] = foreign
    template = json.loads(json.dumps(emulated_pool.deployments[WORKER]["spec"]["template"]))
    for volume in template["spec"]["volumes"]:
        if "secret" in volume:
            volume["secret"]["secretName"] = "foreign-worker-token"
    intruder = emulated_pool.run_pod("htcondor-worker-intruder", template, namespace="htcondor")
    # The collector refused its attempt to authenticate; only then is "no ad" evidence.
    refused(the(emulated_pool, CM), "CollectorLog", intruder.ip)
    assert not any("intruder" in name for _, name in ads(emulated_pool))


def test_unauthenticated_outsiders_can_neither_advertise_nor_submit(emulated_pool):
    host = emulated_pool.run_host(
        "outside-intruder", {"condor_config": outside_host_config(with_token=False),
                             "fake.ad": 'MyType = "Machine"\nName = "slot1@fake-worker"\n'
                                        'Machine = "fake-worker"\nMyAddress = "<10.244.99.99:9618>"\n'
                                        'Requirements = true\nStartdIpAddr = "<10.244.99.99:9618>"\n'},
        ["/bin/sh", "-c", "exec sleep 1000000"], env={"CONDOR_CONFIG": "/etc/outside/condor_config"})
    advertise = host.exec(["condor_advertise", "-pool", f"{SERVICE_HOST}:{CONDOR_PORT}",
                           "UPDATE_STARTD_AD", "/etc/outside/fake.ad"], timeout=60)
    assert advertise.returncode != 0, advertise.stdout
    refused(the(emulated_pool, CM), "CollectorLog", host.ip)
    assert not any("fake-worker" in name for _, name in ads(emulated_pool))

    # Straight to the schedd's own address (an outsider cannot look it up: that is a query).
    schedd = the(emulated_pool, SCHEDD)
    address = schedd.exec(["sh", "-c", 'head -n 1 "$(condor_config_val SCHEDD_ADDRESS_FILE)"']).stdout.strip()
    assert address.startswith("<"), address
    submit = host.exec(["condor_submit", "-addr", address, "-append", "executable=/bin/true",
                        "-append", "queue", "/dev/null"], timeout=60)
    assert submit.returncode != 0 and "Failed to authenticate" in submit.stdout + submit.stderr, submit
    refused(schedd, "SchedLog", host.ip)
    totals = schedd.exec(["condor_q", "-allusers", "-totals"])
    assert totals.returncode == 0, totals.stderr
    assert re.search(r"Total for all users: 0 jobs;", totals.stdout), totals.stdout


def test_the_network_policy_lets_only_the_pool_and_allowed_networks_in(emulated_pool):
    cm, schedd = the(emulated_pool, CM), the(emulated_pool, SCHEDD)
    worker = emulated_pool.pods_of(WORKER)[0]
    exporter = the(emulated_pool, METRICS)
    service = emulated_pool.network.services[CM].vip
    pool_addresses = [cm.ip, service, schedd.ip, worker.ip]
    neighbour = emulated_pool.run_host("neighbour", {}, ["sleep", "1000000"])  # 10.244.200.0/24: allowed
    stranger = emulated_pool.run_host("stranger", {}, ["sleep", "1000000"], subnet=201)

    def condor(addresses):
        return [f"{address}:{CONDOR_PORT}" for address in addresses]

    assert set(connections(worker, condor([cm.ip, service, schedd.ip])).values()) == {"connected"}
    assert set(connections(schedd, condor([cm.ip, service, worker.ip])).values()) == {"connected"}
    assert set(connections(neighbour, condor(pool_addresses)).values()) == {"connected"}
    # The stranger's connects to HTCondor's port get no answer at all: the policy drops them.
    # From the same host, the exporter's port, which its own policy opens to every network
    # (metricsAllowedCidrs' default), connects: the stranger's network and the probe work,
    # and it is the policy that keeps it from HTCondor.
    metrics = f"{exporter.ip}:{METRICS_PORT}"
    assert connections(stranger, [*condor(pool_addresses), metrics]) == {
        **dict.fromkeys(condor(pool_addresses), "timeout"), metrics: "connected"}
    # Only HTCondor's port: the neighbour is let in to 9618, not to anything else.
    assert connections(neighbour, [f"{schedd.ip}:22"]) == {f"{schedd.ip}:22": "timeout"}  # dropped, not refused
