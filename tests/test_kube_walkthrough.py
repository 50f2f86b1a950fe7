"""The walkthrough on a real Kubernetes (tests/kube), through the real Pulumi CLI: one node
built from Kubernetes' own sources, HTCondor in real containers (containerd, runc, seccomp,
the kubelet's volumes, probes and exec), a real storage class and cluster DNS; the stack
driven with the commands a user types (`pulumi config set`, `pulumi up --yes`, `pulumi
stack output`, `pulumi destroy --yes`) and every check made through `kubectl`.

Each `up` is followed by `pulumi preview --expect-no-changes`: a second `up` would change
nothing.

The tests marked `every_htcondor` (the walkthrough itself, each role's credentials, no job
lost to a scale-down or a replaced schedd or central manager, rotation, destroy) run in
both of .ci/run's passes: on HTCondor 23.9 (trixie) and again on 25.x (sid).
"""

import base64
import json
import re
import subprocess
import time

import pytest

from pool import idtokens
from pool.roles import pods, shared
from pool.credentials import TOKEN_HOLDERS
from pool.defaults import ROLES
from pool.password import scramble, unscramble
from pool.security import CONDOR_ID
from tests.conftest import REPORTS
from tests.credential_checks import (
    NOT_AUTHENTICATED, address_of, advertise, authorizations, denied, denied_to, files_holding, granted,
    held_credential, identity_with_token, refusals, token_subjects, wait_for_address, write_token,
)
from tests.htcondor_jobs import (
    SLEEPER, QueryFailed, accounting_submit, job_rows, output, sleeper_submit, submit, user_priorities,
    wait_completed, wait_for_accounting_after, wait_running, when_answered,
)
from tests.kube.kubectl import KubePod, Kubectl, PodWatch
from tests.kube.pulumi import Project
from tests.podsim.kubelet import wait_until
from tests.podsim.rootfs import HTCONDOR_SERIES, suite
from tests.podsim.sandbox import CAPABILITIES
from tests.test_least_privilege import README_CAPABILITIES

NAMESPACE = "htcondor"
CM, SCHEDD, WORKER = "htcondor-central-manager", "htcondor-schedd", "htcondor-worker"
COMPONENT = "app.kubernetes.io/component"
COMPONENTS = {"centralManager": "central-manager", "schedd": "schedd", "worker": "worker"}
# Small enough for two workers, and a rolling update's extra pod, on a 2-CPU node. A
# worker's slot advertises its CPU limit rounded up: 1 CPU, 1024 MB; and 90% of its disk,
# more than the 1 GiB HTCondor 25.x's feature releases ask for a job without request_disk
# (JOB_DEFAULT_REQUESTDISK; 23.9 and the 25.0 LTS ask for its DiskUsage).
WORKER_DISK_GI = 2
RESOURCES = {"centralManager": {"cpu": "100m", "memory": "256Mi", "disk": "512Mi"},
             "schedd": {"cpu": "200m", "memory": "512Mi", "disk": "1Gi"},
             "worker": {"cpu": "500m", "memory": "1Gi", "disk": f"{WORKER_DISK_GI}Gi"}}


def local_image_config(project: Project, image: str, resources: dict = RESOURCES) -> None:
    """`pulumi config set --path images.<role> IMAGE` (the cluster's local image: nothing can
    be pulled here) and `--path resources.<role>.<cpu|memory>` for each role."""
    for role in ROLES:
        project.config_set(f"images.{role}", image, path=True)
    for role, quantities in resources.items():
        for name, quantity in quantities.items():
            project.config_set(f"resources.{role}.{name}", quantity, path=True)


class Stack:
    """A stack of the project on the real cluster, as a user drives it: `pulumi` commands in
    a copy of the project (tests/kube/pulumi.py), and `kubectl`."""

    def __init__(self, project: Project, kubectl: Kubectl, cluster=None):
        self.project = project
        self.kubectl = kubectl
        self.cluster = cluster
        self.outputs: dict = {}

    def up(self, **changes: str) -> float:
        """`pulumi config set KEY VALUE` for each change, `pulumi up --yes`, then `pulumi
        preview --expect-no-changes`; returns the seconds `up` took."""
        took = self.project.up(**changes)
        self.outputs = self.project.outputs()
        return took

    @property
    def password(self) -> str:
        """`pulumi stack output pool_password --show-secrets`."""
        return self.project.output("pool_password")

    # ---- what kubectl shows ------------------------------------------------------------
    def pods(self, role: str) -> list[dict]:
        return self.kubectl.pods(NAMESPACE, f"{COMPONENT}={role}")

    def pod(self, role: str) -> KubePod:
        (pod,) = wait_until(lambda: self.pods(role) if len(self.pods(role)) == 1 else None,
                            120, 0.5, f"one running {role} pod")
        return KubePod(self.kubectl, NAMESPACE, pod["metadata"]["name"])

    def secret(self, role: str) -> bytes:
        """The bytes of `role`'s credential Secret, as the cluster holds them."""
        name = shared.credential_secret_name("htcondor", role)
        (value,) = self.kubectl.json("-n", NAMESPACE, "get", "secret", name)["data"].values()
        return base64.b64decode(value)

    def diagnostics(self) -> str:
        shown = [self.kubectl(*args, check=False).stdout for args in (
            ("get", "all,pvc,pv,events", "-A", "-o", "wide"),
            ("-n", NAMESPACE, "logs", "-l", "app.kubernetes.io/name=htcondor", "--tail=30", "--prefix"))]
        if self.cluster is not None:
            shown.append(self.cluster.component_logs())
        return "\n".join(shown)


def ads(stack: Stack) -> set[tuple[str, str]]:
    """(MyType, Name) of every ad `condor_status -any` shows in the central-manager pod,
    asked as the walkthrough does: `kubectl exec deploy/htcondor-central-manager`. A query
    that fails raises QueryFailed."""
    result = stack.kubectl("-n", NAMESPACE, "exec", f"deploy/{CM}", "--", "condor_status", "-any",
                           "-af", "MyType", "Name", check=False, timeout=60)
    if result.returncode != 0:
        raise QueryFailed(f"condor_status -any failed ({result.returncode}): {result.stderr.strip()}")
    return {tuple(line.split(None, 1)) for line in result.stdout.splitlines() if line.strip()}


def slots(stack: Stack) -> set[str] | None:
    """The Machine ads' names, or None while the query fails."""
    answer = when_answered(lambda: ads(stack))
    return None if answer is None else {name for kind, name in answer if kind == "Machine"}


def expected_ads(stack: Stack) -> set[tuple[str, str]]:
    (cm,), (schedd,) = stack.pods("central-manager"), stack.pods("schedd")
    cm, schedd = cm["metadata"]["name"], schedd["metadata"]["name"]
    want = {("Collector", f"HTCondor on Kubernetes@{cm}"), ("Negotiator", cm), ("DaemonMaster", cm),
            ("Scheduler", schedd), ("DaemonMaster", schedd)}
    for worker in stack.pods("worker"):
        name = worker["metadata"]["name"]
        want |= {("DaemonMaster", name), ("Machine", f"slot1@{name}")}
    return want


def wait_for_ads(stack: Stack, timeout: float = 120) -> set[tuple[str, str]]:
    """Every expected ad; a query that fails meanwhile (a central manager being replaced)
    counts as "not yet"."""
    seen = {"have": set(), "want": set()}

    def complete():
        want = expected_ads(stack)
        try:
            seen["have"], seen["want"] = ads(stack), want
        except QueryFailed as failed:
            seen["failed"] = str(failed)
            return None
        return seen["have"] if want <= seen["have"] else None
    try:
        return wait_until(complete, timeout, 1, "every ad")
    except TimeoutError:
        raise TimeoutError(f"after {timeout}s missing {sorted(seen['want'] - seen['have'])}; "
                           f"present {sorted(seen['have'])}; last failure: {seen.get('failed')}") from None


@pytest.fixture(scope="module")
def stack(kube_cluster):
    cluster, env = kube_cluster
    project = Project.create(cluster.workdir / "projects" / "walkthrough", env, "dev")
    local_image_config(project, env["HTCONDOR_POOL_TEST_IMAGE"])
    pool = Stack(project, Kubectl(env), cluster)
    took = pool.up()
    REPORTS.append(f"real cluster: first `pulumi up --yes` of the dev stack: {took:.1f}s")
    yield pool
    if pool.outputs:  # a test destroyed the stack and brought it back: destroy it again
        project.destroy()


@pytest.mark.every_htcondor
def test_pulumi_stack_output_gives_every_output_the_readme_lists(stack):
    from tests.test_project_files import readme_outputs
    shown = stack.project.pulumi("stack", "output", "--json").stdout
    outputs = json.loads(shown)
    assert set(outputs) == set(readme_outputs())
    # Without --show-secrets, the secrets stay hidden.
    for name in ("pool_password", "submit_token", "worker_token"):
        assert outputs[name] == "[secret]", name
    assert stack.password not in shown
    assert outputs["central_manager_address"] == "htcondor-central-manager.htcondor.svc.cluster.local:9618"
    assert (outputs["namespace"], outputs["workers"], outputs["service_name"]) == (NAMESPACE, 1, CM)
    assert (outputs["central_manager_deployment_name"], outputs["schedd_deployment_name"],
            outputs["worker_deployment_name"]) == (CM, SCHEDD, WORKER)
    assert outputs["worker_pool_deployment_names"] == {"default": WORKER}
    for name in (CM, SCHEDD, WORKER):
        stack.kubectl("-n", NAMESPACE, "get", "deployment", name)
    # The password a user reads from the stack is the key in the cluster's Secret.
    assert scramble(stack.password) == stack.secret("centralManager")
    assert unscramble(stack.secret("centralManager")) == stack.password


@pytest.mark.every_htcondor
def test_the_pool_forms_with_every_daemon(stack):
    have = wait_for_ads(stack)
    assert ("Machine", f"slot1@{stack.pods('worker')[0]['metadata']['name']}") in have


@pytest.mark.every_htcondor
def test_every_pod_runs_the_htcondor_its_test_pass_names(stack):
    """The main pass runs HTCondor 23.9 (trixie), the second pass of .ci/run 25.x (sid):
    each asks HTCondor itself, in every pod of the pool, so one image cannot pass as the other."""
    series = HTCONDOR_SERIES[suite()]
    for role in ("central-manager", "schedd", "worker"):
        result = stack.pod(role).exec(["condor_version"])
        assert result.returncode == 0, result.stderr
        version = result.stdout.split()[1]
        assert version.startswith(series), (role, version, series)
    REPORTS.append(f"real cluster: HTCondor {version} in every pod ({suite()})")


@pytest.mark.every_htcondor
def test_the_slot_has_the_worker_containers_cpus_and_memory(stack):
    wait_for_ads(stack)
    result = stack.kubectl("-n", NAMESPACE, "exec", f"deploy/{CM}", "--", "condor_status", "-af",
                           "PartitionableSlot", "TotalSlotCpus", "TotalSlotMemory")
    assert result.stdout.split() == ["true", "1", "1024"]  # 500m rounded up, 1Gi: the container's


@pytest.mark.every_htcondor
def test_the_central_manager_address_resolves_in_the_pods(stack):
    host, port = stack.outputs["central_manager_address"].rsplit(":", 1)
    service = stack.kubectl.json("-n", NAMESPACE, "get", "service", stack.outputs["service_name"])
    resolved = stack.pod("schedd").exec(["getent", "hosts", host])
    assert resolved.returncode == 0, resolved.stderr
    assert resolved.stdout.split()[0] == service["spec"]["clusterIP"]
    assert port == "9618"


@pytest.mark.every_htcondor
def test_every_pod_runs_under_seccomp_with_only_its_roles_privileges(stack):
    """The runtime applies each securityContext: the RuntimeDefault seccomp filter, no
    capability outside the role's, no new privileges, a read-only image."""
    wait_for_ads(stack)
    numbers = {name: number for number, name in enumerate(CAPABILITIES)}
    for role, component in (("centralManager", "central-manager"), ("schedd", "schedd"), ("worker", "worker")):
        allowed = sum(1 << numbers[c] for c in README_CAPABILITIES[role])
        pod = stack.pod(component)
        status = pod.exec(["sh", "-c", "for p in /proc/[0-9]*; do cat $p/status; done"]).stdout
        processes = status.split("Name:")[1:]
        assert any("condor_master" in p for p in processes), pod.name
        for process in processes:
            fields = dict(line.split(":", 1) for line in process.splitlines()[1:] if ":" in line)
            name = process.split()[0]
            if name.startswith("runc:["):
                continue  # the runtime setting up a concurrent exec (a probe): not yet confined
            assert fields["Seccomp"].strip() == "2", (pod.name, name)  # a filter is on
            for key in ("CapBnd", "CapPrm", "CapEff"):
                assert int(fields[key], 16) & ~allowed == 0, (pod.name, name, key)
            assert fields["NoNewPrivs"].strip() == "1", (pod.name, name)
            if role == "centralManager":  # as the condor user, real, effective and saved
                assert set(fields["Uid"].split()) == set(fields["Gid"].split()) == {str(CONDOR_ID)}, name
        written = pod.exec(["touch", "/usr/share/written-by-a-pod"])
        assert "Read-only file system" in written.stderr, (pod.name, written)


@pytest.mark.every_htcondor
def test_confined_htcondor_logs_no_permission_error(stack):
    """Nothing HTCondor does is refused by the runtime's seccomp filter, the dropped
    capabilities or the read-only image (each once was: see the configuration's comments)."""
    wait_for_ads(stack)
    refused = re.compile(r"Permission denied|Operation not permitted|Read-only file system|"
                         r"Failed to launch mailer")
    for component in ("central-manager", "schedd", "worker"):
        pod = stack.pod(component)
        logs = pod.exec(["sh", "-c", "cat /var/lib/htcondor-pool/log/*Log*"]).stdout
        assert "condor_master (CONDOR_MASTER) STARTING UP" in logs, pod.name
        assert not [line for line in logs.splitlines() if refused.search(line)], pod.name


@pytest.mark.every_htcondor
def test_each_role_holds_only_its_credential_and_can_do_only_what_its_role_does(stack):
    """The signing key only in the central manager; the schedd's and a worker's tokens read by
    HTCondor, and limited: no Scheduler ad from a worker, no Machine ad from the schedd, no
    administration of the central manager or the schedd from a worker, no foreign token."""
    wait_for_ads(stack)
    host = stack.outputs["central_manager_address"].rsplit(":", 1)[0]
    submit, execute = (TOKEN_HOLDERS[r].subject(host) for r in ("schedd", "worker"))
    cm, schedd, worker = (stack.pod(c) for c in ("central-manager", "schedd", "worker"))
    key = [stack.password.encode(), scramble(stack.password)]
    assert files_holding(schedd, key) == [] and files_holding(worker, key) == []
    assert pods.credential_file("centralManager") in files_holding(cm, key)
    assert token_subjects(schedd) == [submit] and token_subjects(worker) == [execute]

    assert denied_to(advertise(worker, "UPDATE_SCHEDD_AD"), execute)
    assert denied_to(advertise(schedd, "UPDATE_STARTD_AD"), submit)
    # Each level answered by the daemon itself (never a failure to reach it): the central
    # manager knows the worker and refuses it what its role does not do; the schedd holds no
    # key and cannot check its token at all.
    table = authorizations(worker, address_of(worker, "master", cm.name))
    assert granted(table) == dict.fromkeys(("READ", "ADVERTISE_MASTER", "ADVERTISE_STARTD"), execute)
    assert refusals(table) == {denied(execute)}
    table = authorizations(worker, address_of(worker, "schedd", schedd.name))
    assert granted(table) == {} and refusals(table) == {NOT_AUTHENTICATED}

    # A token from another pool's key is refused, where the worker's own token, presented
    # the same way, is accepted: the refusal is the key's, not a broken probe's.
    master = address_of(worker, "master", cm.name)
    foreign = idtokens.mint("another-pools-password", host, execute, TOKEN_HOLDERS["worker"].scopes)
    assert identity_with_token(worker, stack.project.output("worker_token"), master) == execute
    assert identity_with_token(worker, foreign, master) is None
    result = advertise(worker, "UPDATE_STARTD_AD", token_dir=write_token(worker, foreign))
    assert "Failed to authenticate using IDTOKENS" in result.stdout + result.stderr
    fakes = [name for _, name in ads(stack) if "fake" in name]
    assert not fakes, fakes


RESTRICTED = "psa-restricted"


def pod_templates(stack: Stack) -> dict[str, dict]:
    """Each live Deployment's pod template, by component: what `pulumi up` created."""
    deployments = stack.kubectl.json("-n", NAMESPACE, "get", "deployments")["items"]
    return {d["metadata"]["labels"][COMPONENT]: d["spec"]["template"] for d in deployments}


def admitted_where_restricted(stack: Stack, template: dict, name: str) -> subprocess.CompletedProcess:
    """A server-side dry run of a pod of `template` in a namespace that enforces the Pod
    Security Standard `restricted`: the real API server's admission decides."""
    if "NotFound" in stack.kubectl("get", "namespace", RESTRICTED, check=False).stderr:
        stack.kubectl("create", "namespace", RESTRICTED)
        stack.kubectl("label", "namespace", RESTRICTED, "pod-security.kubernetes.io/enforce=restricted")
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": RESTRICTED, "labels": template["metadata"]["labels"]},
           "spec": template["spec"]}
    return stack.kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod), check=False)


def test_pod_security_admission_enforces_what_each_pod_meets(stack):
    """The API server's Pod Security Admission, not our reading of the standard: the pool's
    namespace enforces the strongest level all its pods meet (they run), and a namespace
    enforcing `restricted` admits the central manager and the metrics exporter and refuses the schedd and root
    workers with the standard's reasons (unprivileged workers: see their test)."""
    labels = stack.kubectl.json("get", "namespace", NAMESPACE)["metadata"]["labels"]
    assert {k: v for k, v in labels.items() if k.startswith("pod-security.kubernetes.io/")} == {
        "pod-security.kubernetes.io/enforce": "baseline",  # the schedd's root, with capabilities
        "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted"}
    wait_for_ads(stack)  # every pod of the pool was admitted, and runs
    templates = pod_templates(stack)
    for name in ("central-manager", "metrics"):  # the metrics exporter's pod too
        result = admitted_where_restricted(stack, templates[name], name)
        assert result.returncode == 0, (name, result.stderr)
    for name in ("schedd", "worker"):
        result = admitted_where_restricted(stack, templates[name], name)
        assert result.returncode != 0 and 'violates PodSecurity "restricted:latest"' in result.stderr, \
            (name, result.stderr)
        for reason in ("unrestricted capabilities", "runAsNonRoot != true"):
            assert reason in result.stderr, (name, reason, result.stderr)


@pytest.mark.every_htcondor
def test_a_job_submitted_through_kubectl_exec_runs_and_its_output_comes_back(stack):
    wait_for_ads(stack)
    schedd = stack.pod("schedd")
    cluster_id = submit(schedd, "hello", SLEEPER, sleeper_submit(1, tag="hello"))
    (row,) = wait_completed(schedd, cluster_id, 1)
    assert row[1:3] == ["4", "0"], row  # completed, exit code 0
    assert output(schedd, "hello.out.0").startswith("slept 1s on htcondor-worker-")


@pytest.mark.every_htcondor
def test_scaling_to_two_workers_and_back_to_one_loses_no_job(stack):
    stack.up(workers="2")
    wait_until(lambda: len(slots(stack) or ()) == 2, 120, 1, "two slots")
    wait_for_ads(stack)
    schedd = stack.pod("schedd")
    before = {p["metadata"]["name"] for p in stack.pods("worker")}
    # One 1-CPU job per 1-CPU slot: both workers run one.
    cluster_id = submit(schedd, "long", SLEEPER, sleeper_submit(40, count=2, tag="long"))
    running = wait_running(schedd, cluster_id, count=2, timeout=120)
    assert {host.split("@", 1)[1] for _, host in running} == before

    stack.up(workers="1")
    leaving = before - {p["metadata"]["name"] for p in stack.pods("worker")}
    assert len(leaving) == 1, leaving
    rows = wait_completed(schedd, cluster_id, 2, timeout=180)
    # Both finished, exit 0, each on its first and only start: the leaving worker drained.
    assert all(status == "4" and code == "0" and starts == "1" for _, status, code, _, starts in rows), rows
    assert leaving <= {host.split("@", 1)[1] for *_, host, _ in rows}
    wait_until(lambda: stack.kubectl("-n", NAMESPACE, "get", "pod", *leaving, check=False).returncode != 0,
               120, 1, "the leaving worker's pod to be gone")


def scheduled(pod: dict) -> bool:
    return bool(pod["spec"].get("nodeName"))


def stopped(pod: dict) -> bool:
    """Every container of the pod has exited (the scheduler then no longer counts the pod,
    its ReadWriteOncePod claim among what it uses, though the kubelet may still be tearing
    down its volumes)."""
    statuses = pod["status"].get("containerStatuses", [])
    return pod["status"].get("phase") in ("Succeeded", "Failed") or \
        bool(statuses) and all("terminated" in s.get("state", {}) for s in statuses)


@pytest.mark.every_htcondor
def test_a_deleted_schedd_pod_is_replaced_only_once_it_has_stopped_and_its_job_runs_once(stack):
    """docs/reliability.md: the schedd's queue is on a ReadWriteOncePod claim, so a
    replacement schedd (a `kubectl delete pod`, which a Deployment's Recreate strategy does
    not order) exists beside the old one while it shuts down, but is not scheduled until
    every container of the old one has exited: never two schedds on one queue. Every change
    of both pods is watched, in the API server's order; the job the old schedd ran
    finishes, started once."""
    wait_for_ads(stack)
    schedd = stack.pod("schedd")
    cluster_id = submit(schedd, "kept", SLEEPER, sleeper_submit(45, tag="kept"))
    wait_running(schedd, cluster_id, timeout=120)
    (old,) = stack.pods("schedd")
    old_uid = old["metadata"]["uid"]
    with PodWatch(stack.kubectl, NAMESPACE, f"{COMPONENT}=schedd") as watch:
        stack.kubectl("-n", NAMESPACE, "delete", "pod", old["metadata"]["name"], "--wait=true", timeout=120)
        (new,) = wait_until(lambda: [p for p in stack.pods("schedd") if p["metadata"]["uid"] != old_uid] or None,
                            180, 1, "the replacement schedd running")
    new_uid = new["metadata"]["uid"]
    old_state, held, placed = old, False, []  # placed: the old pod as it was when the new one was scheduled
    for kind, pod in watch.events:
        if pod["metadata"]["uid"] == old_uid:
            old_state = None if kind == "DELETED" else pod
        elif pod["metadata"]["uid"] == new_uid:
            held = held or (old_state is not None and not stopped(old_state) and not scheduled(pod))
            if scheduled(pod) and not placed:
                placed.append(old_state)
    # The replacement was there, unscheduled, while the old schedd still ran...
    assert held, [(kind, pod["metadata"]["name"], pod["status"].get("phase")) for kind, pod in watch.events]
    # ...and was scheduled only once the old one had stopped (or was gone).
    (old_then,) = placed
    assert old_then is None or stopped(old_then), old_then["status"]
    refused = stack.kubectl.json("-n", NAMESPACE, "get", "events", "--field-selector",
                                 f"reason=FailedScheduling,involvedObject.uid={new_uid}")["items"]
    REPORTS.append("real cluster: a deleted schedd's replacement waited for it to stop"
                   + (f"; the scheduler said: {refused[0]['message']!r}" if refused else ""))
    schedd = stack.pod("schedd")
    ((_, status, code, _, starts),) = wait_completed(schedd, cluster_id, 1, timeout=180)
    assert (status, code, starts) == ("4", "0", "1")


@pytest.mark.every_htcondor
def test_a_deleted_central_manager_pod_is_replaced_and_every_ad_comes_back(stack):
    wait_for_ads(stack)
    (old,) = stack.pods("central-manager")
    started = time.monotonic()
    stack.kubectl("-n", NAMESPACE, "delete", "pod", "-l", f"{COMPONENT}=central-manager", timeout=120)
    new = stack.pod("central-manager")
    assert new.name != old["metadata"]["name"]
    healed = wait_for_ads(stack, timeout=180)
    REPORTS.append(f"real cluster: central manager pod deleted; every ad back {time.monotonic() - started:.1f}s later")
    assert not any(old["metadata"]["name"] in name for _, name in healed)


def test_fair_share_survives_the_central_managers_replacement_and_a_rotation(stack):
    """Two accounting users' usage and priorities, as condor_userprio shows them, are the
    same after the central manager's pod is deleted, and after `pulumi up` rolls it with a
    new password: the negotiator reads them back from NAME-central-manager-spool."""
    from tests.test_fair_share import ALICE, BOB, same_accounting
    wait_for_ads(stack)
    schedd = stack.pod("schedd")
    alice = submit(schedd, "alice", SLEEPER, accounting_submit(20, "physics", "alice", count=2, tag="alice"))
    bob = submit(schedd, "bob", SLEEPER, accounting_submit(2, "physics", "bob", tag="bob"))
    wait_completed(schedd, alice, 2, timeout=180), wait_completed(schedd, bob, 1)
    completed = max(int(row[0]) for cluster_id in (alice, bob)
                    for row in job_rows(schedd, "condor_history", cluster_id, "CompletionDate"))
    wait_for_accounting_after(stack.pod("central-manager"), completed)
    before = user_priorities(stack.pod("central-manager"))
    assert {ALICE, BOB} <= set(before) and before[ALICE][0] > before[BOB][0] > 0, before

    def replacement(old: str) -> dict:
        def answered():
            pods = [p["metadata"]["name"] for p in stack.pods("central-manager") if p["metadata"]["name"] != old]
            return pods and when_answered(lambda: user_priorities(KubePod(stack.kubectl, NAMESPACE, pods[0])))
        return wait_until(answered, 180, 1, "the replacement's negotiator to answer")

    old = stack.pod("central-manager").name
    stack.kubectl("-n", NAMESPACE, "delete", "pod", old, timeout=120)
    same_accounting(before, replacement(old))
    old = stack.pod("central-manager").name
    stack.up(passwordVersion="fair-share")
    same_accounting(before, replacement(old))


def pod_checksums(stack: Stack) -> dict[str, str]:
    """Each running pool pod's credential checksum (the annotation that rolls it), by name."""
    return {p["metadata"]["name"]: p["metadata"]["annotations"][shared.CHECKSUM_CREDENTIAL]
            for component in COMPONENTS.values() for p in stack.pods(component)}


@pytest.mark.every_htcondor
def test_rotating_the_password_rolls_every_pod_and_the_pool_runs_a_job(stack):
    """`pulumi config set passwordVersion 2 && pulumi up --yes`, seen from the stack's outputs
    and from the cluster: a new password, new bytes in every credential Secret, every pod
    replaced with a new credential checksum and holding its new credential, the old token
    refused where the new one is accepted, and a job runs."""
    wait_for_ads(stack)
    old_password, old_token = stack.password, stack.project.output("worker_token")
    old_secrets = {role: stack.secret(role) for role in ROLES}
    old_checksums = pod_checksums(stack)
    stack.up(passwordVersion="2")
    new_password = stack.password
    assert new_password != old_password
    new_checksums = pod_checksums(stack)
    assert len(new_checksums) == 3 and not set(old_checksums) & set(new_checksums), (old_checksums, new_checksums)
    assert not set(old_checksums.values()) & set(new_checksums.values())
    for role, component in COMPONENTS.items():
        secret = stack.secret(role)
        assert secret != old_secrets[role], role
        assert held_credential(stack.pod(component), role) == secret, role
        if role == "centralManager":
            assert secret == scramble(new_password)
        else:
            idtokens.verify(secret.decode(), new_password)
            with pytest.raises(Exception):
                idtokens.verify(secret.decode(), old_password)
    assert stack.project.output("worker_token") == stack.secret("worker").decode()
    wait_for_ads(stack, timeout=180)
    worker = stack.pod("worker")
    master = wait_for_address(worker, "master", stack.pod("central-manager").name)
    execute = TOKEN_HOLDERS["worker"].subject(stack.outputs["central_manager_address"].rsplit(":", 1)[0])
    assert identity_with_token(worker, stack.secret("worker").decode(), master) == execute
    assert identity_with_token(worker, old_token, master) is None
    schedd = stack.pod("schedd")
    cluster_id = submit(schedd, "rotated", SLEEPER, sleeper_submit(1, tag="rotated"))
    (row,) = wait_completed(schedd, cluster_id, 1)
    assert row[1:3] == ["4", "0"], row


def test_unprivileged_workers_run_their_jobs_as_condor(stack):
    """`unprivilegedWorkers: true` on the real kubelet (fsGroup, runAsNonRoot, no
    capability): the workers roll, the pool re-forms, and a job runs as the condor user."""
    stack.up(unprivilegedWorkers="true")
    # The live template meets `restricted`: the API server admits it where that is enforced.
    result = admitted_where_restricted(stack, pod_templates(stack)["worker"], "unprivileged-worker")
    assert result.returncode == 0, result.stderr
    worker = stack.pod("worker")
    identity = worker.exec(["sh", "-c", "id -u; grep CapEff /proc/self/status"]).stdout.split()
    assert identity == [str(CONDOR_ID), "CapEff:", "0000000000000000"], identity
    wait_for_ads(stack, timeout=180)
    schedd = stack.pod("schedd")
    whoami = "#!/bin/sh\necho \"$(id -un) $(id -u)\"\n"
    cluster_id = submit(schedd, "whoami", whoami, sleeper_submit(0, tag="whoami"))
    (row,) = wait_completed(schedd, cluster_id, 1)
    assert row[1:3] == ["4", "0"], row
    assert output(schedd, "whoami.out.0").split() == ["condor", str(CONDOR_ID)]
    stack.up(unprivilegedWorkers="false")


def test_a_worker_pool_runs_on_the_node_its_node_selector_picks(stack):
    """placement on the real scheduler: the node gets a label; a pool selecting it runs there
    and takes the jobs that ask for it; without the label its pod stays Pending; removing the
    pool from config deletes its Deployment."""
    (node,) = stack.kubectl.json("get", "nodes")["items"]
    node_name, label = node["metadata"]["name"], "htcondor-pool.test/disk"
    stack.kubectl("label", "node", node_name, f"{label}=ssd", "--overwrite")
    pools = {"ssd": {"workers": 1, "placement": {"nodeSelector": {label: "ssd"}}}}
    try:
        stack.up(workerPools=json.dumps(pools))
        (pod,) = stack.pods("worker-ssd")
        assert pod["spec"]["nodeSelector"] == {label: "ssd"} and pod["spec"]["nodeName"] == node_name
        name = pod["metadata"]["name"]
        wait_for_ads(stack)
        schedd = stack.pod("schedd")
        cluster_id = submit(schedd, "ssd", SLEEPER, sleeper_submit(1, 'requirements = WorkerPool == "ssd"',
                                                                   count=2, tag="ssd"))
        rows = wait_completed(schedd, cluster_id, 2)
        assert all(row[1:3] == ["4", "0"] and row[3].endswith(name) for row in rows), rows

        # The label gone, a replacement pod has no node to go to.
        stack.kubectl("label", "node", node_name, f"{label}-")
        stack.kubectl("-n", NAMESPACE, "delete", "pod", name, "--wait=false")

        def unschedulable():
            for p in stack.kubectl.json("-n", NAMESPACE, "get", "pods", "-l", f"{COMPONENT}=worker-ssd")["items"]:
                reasons = [c.get("message", "") for c in p["status"].get("conditions", [])
                           if c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"]
                if p["metadata"]["name"] != name and reasons:
                    return reasons[0]
        reason = wait_until(unschedulable, 60, 1, "the replacement pod to be unschedulable")
        assert "didn't match Pod's node affinity/selector" in reason, reason
        stack.kubectl("label", "node", node_name, f"{label}=ssd")
        stack.kubectl("-n", NAMESPACE, "rollout", "status", f"deploy/{WORKER}-ssd", "--timeout=120s", timeout=150)
    finally:
        stack.kubectl("label", "node", node_name, f"{label}-", check=False)
    stack.up(workerPools="{}")
    assert stack.pods("worker-ssd") == []
    assert "NotFound" in stack.kubectl("-n", NAMESPACE, "get", f"deploy/{WORKER}-ssd", check=False).stderr


# Writes past the worker's disk (RESOURCES) into its sandbox, then waits to be stopped.
DISK_FILLER = f"""#!/bin/sh
dd if=/dev/zero of=filler bs=1M count={WORKER_DISK_GI * 1024 + 256} 2>&1
sleep 600
"""


def test_a_job_writing_past_its_workers_disk_gets_only_that_worker_evicted_and_is_requeued(stack):
    """The README's "Disk" section: a job that writes more than its worker's `disk` gets
    that worker's pod evicted by the kubelet (its event names the limit), no other pod is
    touched, and the job goes back to the queue when its lease runs out. The job asks to
    start only once (Requirements on NumJobStarts), so it waits in the queue instead of
    filling the next worker, and a short job lease makes the requeue come within the test."""
    wait_for_ads(stack)
    (worker,) = stack.pods("worker")
    def others() -> dict[str, int]:  # every other pod of the pool: central manager, schedd, exporter
        return {p["metadata"]["uid"]: p["status"]["containerStatuses"][0]["restartCount"]
                for p in stack.kubectl.json("-n", NAMESPACE, "get", "pods")["items"]
                if p["metadata"]["uid"] != worker["metadata"]["uid"]}
    untouched = others()
    assert {p["metadata"]["labels"][COMPONENT] for p in stack.kubectl.json("-n", NAMESPACE, "get", "pods")["items"]
            } >= {"central-manager", "schedd", "worker", "metrics"}
    schedd = stack.pod("schedd")
    cluster_id = submit(schedd, "filler", DISK_FILLER, sleeper_submit(
        0, "job_lease_duration = 60\nrequirements = (MY.NumJobStarts =?= 0)", tag="filler"))
    started = time.monotonic()

    def evicted():
        pod = stack.kubectl.json("-n", NAMESPACE, "get", "pod", worker["metadata"]["name"])
        return pod if pod["status"].get("reason") == "Evicted" else None
    pod = wait_until(evicted, 300, 2, "the worker's pod to be evicted")
    events = stack.kubectl.json("-n", NAMESPACE, "get", "events", "--field-selector",
                                f"reason=Evicted,involvedObject.name={worker['metadata']['name']}")["items"]
    message = events[0]["message"] if events else pod["status"].get("message", "")
    REPORTS.append(f"real cluster: a job wrote past its worker's {WORKER_DISK_GI}Gi disk: the worker was evicted "
                   f"{time.monotonic() - started:.0f}s after the submit; the kubelet's event: {message!r}")
    assert pod["status"]["phase"] == "Failed"
    assert "exceed" in message and f"{WORKER_DISK_GI}Gi" in message, message
    # Nothing else was touched: the same central manager, schedd and exporter, never restarted
    # (the replacement worker, which the Deployment starts, aside).
    after = {uid: restarts for uid, restarts in others().items() if uid in untouched}
    assert after == untouched
    # The job is back in the queue, idle, after its one start; nothing was lost.
    wait_until(lambda: when_answered(lambda: job_rows(schedd, "condor_q", cluster_id, "JobStatus",
                                                      "NumJobStarts")) == [["1", "1"]],
               240, 2, "the evicted worker's job to be requeued")
    schedd.exec(["condor_rm", cluster_id], user="submitter")
    wait_for_ads(stack)  # the Deployment's replacement worker joined
    # The evicted pod stays, Failed, as Kubernetes keeps evicted pods until deleted; and
    # the collector keeps its slot's ad until the ad's lifetime runs out (no startd was
    # left to withdraw it). Hence this test's place, last before the destroy.
    stack.kubectl("-n", NAMESPACE, "delete", "pod", worker["metadata"]["name"])


@pytest.mark.every_htcondor
def test_destroy_removes_every_object_and_a_second_up_works(stack):
    volumes = [stack.kubectl.json("-n", NAMESPACE, "get", "pvc", claim)["spec"]["volumeName"]
               for claim in ("htcondor-schedd-spool", "htcondor-central-manager-spool")]
    stack.kubectl("delete", "namespace", RESTRICTED, "--ignore-not-found", "--wait=true", timeout=120)
    stack.project.destroy()
    stack.outputs = {}
    assert "NotFound" in stack.kubectl("get", "namespace", NAMESPACE, check=False).stderr
    # The claims went with the namespace; their volumes were released, wiped and offered again.
    for volume in volumes:
        wait_until(lambda: stack.kubectl.json("get", "pv", volume)["status"]["phase"] == "Available",
                   60, 1, f"volume {volume} to be available again")
    claimed = [pv["metadata"]["name"] for pv in stack.kubectl.json("get", "pv")["items"]
               if pv["spec"].get("claimRef", {}).get("namespace") == NAMESPACE]
    assert not claimed, claimed
    # Nothing of the stack is left in its state either.
    assert json.loads(stack.project.pulumi("stack", "output", "--json").stdout) == {}
    stack.up()
    wait_for_ads(stack)
