"""The walkthrough on a real Kubernetes (tests/kube): one node built from Kubernetes' own
sources, HTCondor in real containers (containerd, runc, seccomp, the kubelet's volumes,
probes and exec), a real storage class and cluster DNS, every check through `kubectl` as
a user types it.

The program's objects are applied as `pulumi up` applies them (tests/kube/deploy.py): the
real Pulumi CLI cannot be built on these machines yet (README, "The real cluster"). Each
`up` is followed by the equivalent of `pulumi preview --expect-no-changes`: applying the
same objects again would change nothing on the server.
"""

import json
import re
import subprocess
import time

import pytest

from pool import idtokens, manifests
from pool.defaults import ROLES
from pool.credentials import TOKEN_HOLDERS
from pool.password import scramble
from pool.security import CONDOR_ID, ROLE_CAPABILITIES
from tests.conftest import REPORTS, start_kube_cluster
from tests.credential_checks import (
    address_of, advertise, authorizations, denied_to, files_holding, held_credential, rendered_credential,
    token_subjects,
)
from tests.htcondor_jobs import SLEEPER, output, sleeper_submit, submit, wait_completed, wait_running
from tests.kube.deploy import Deployer
from tests.kube.kubectl import KubePod, Kubectl
from tests.podsim.kubelet import wait_until
from tests.podsim.sandbox import CAPABILITIES
from tests.render import random_password, render

NAMESPACE = "htcondor"
CM, SCHEDD, WORKER = "htcondor-central-manager", "htcondor-schedd", "htcondor-worker"
COMPONENT = "app.kubernetes.io/component"
# Small enough for two workers, and a rolling update's extra pod, on a 2-CPU node. A
# worker's slot advertises its CPU limit rounded up: 1 CPU, 1024 MB.
RESOURCES = {"centralManager": {"cpu": "100m", "memory": "256Mi"},
             "schedd": {"cpu": "200m", "memory": "512Mi"},
             "worker": {"cpu": "500m", "memory": "1Gi"}}


class Stack:
    """A stack's config as `pulumi config set` builds it, and `pulumi up` of it."""

    def __init__(self, kubectl: Kubectl, image: str, cluster=None):
        self.kubectl = kubectl
        self.cluster = cluster
        self.deployer = Deployer(["kubectl"], kubectl.env)
        # pulumi config set --path images.<role> IMAGE, and small resources (see RESOURCES).
        self.config = {"images": json.dumps({role: image for role in ROLES}),
                       "resources": json.dumps(RESOURCES)}
        self.password = random_password()  # what the RandomPassword holds
        self.rendered = None

    def up(self, **changes: str) -> float:
        """`pulumi config set KEY VALUE` for each change, then `pulumi up`; returns seconds."""
        self.config.update(changes)
        started = time.monotonic()
        self.rendered = render(self.config, password=self.password)
        self.deployer.up(self.rendered)
        took = time.monotonic() - started
        changes_left = self.deployer.has_changes(self.rendered)
        assert changes_left == "", f"applying the same objects again would change:\n{changes_left}"
        return took

    # ---- what kubectl shows ------------------------------------------------------------
    def pods(self, role: str) -> list[dict]:
        return self.kubectl.pods(NAMESPACE, f"{COMPONENT}={role}")

    def pod(self, role: str) -> KubePod:
        (pod,) = wait_until(lambda: self.pods(role) if len(self.pods(role)) == 1 else None,
                            120, 0.5, f"one running {role} pod")
        return KubePod(self.kubectl, NAMESPACE, pod["metadata"]["name"])

    def diagnostics(self) -> str:
        shown = [self.kubectl(*args, check=False).stdout for args in (
            ("get", "all,pvc,pv,events", "-A", "-o", "wide"),
            ("-n", NAMESPACE, "logs", "-l", "app.kubernetes.io/name=htcondor", "--tail=30", "--prefix"))]
        if self.cluster is not None:
            shown.append(self.cluster.component_logs())
        return "\n".join(shown)


def ads(stack: Stack) -> set[tuple[str, str]]:
    """(MyType, Name) of every ad `condor_status -any` shows in the central-manager pod,
    asked as the walkthrough does: `kubectl exec deploy/htcondor-central-manager`."""
    result = stack.kubectl("-n", NAMESPACE, "exec", f"deploy/{CM}", "--", "condor_status", "-any",
                           "-af", "MyType", "Name", check=False, timeout=60)
    if result.returncode != 0:
        return set()
    return {tuple(line.split(None, 1)) for line in result.stdout.splitlines() if line.strip()}


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
    seen = {}

    def complete():
        want = expected_ads(stack)
        seen["have"], seen["want"] = ads(stack), want
        return seen["have"] if want <= seen["have"] else None
    try:
        return wait_until(complete, timeout, 1, "every ad")
    except TimeoutError:
        raise TimeoutError(f"after {timeout}s missing {sorted(seen['want'] - seen['have'])}; "
                           f"present {sorted(seen['have'])}") from None


@pytest.fixture(scope="module")
def stack():
    cluster, env = start_kube_cluster("t")
    try:
        kubectl = Kubectl(env)
        pool = Stack(kubectl, env["HTCONDOR_POOL_TEST_IMAGE"], cluster)
        took = pool.up()
        REPORTS.append(f"real cluster: first apply of the dev stack until every Deployment was "
                       f"available: {took:.1f}s")
        yield pool
    finally:
        cluster.down()


def test_the_pool_forms_with_every_daemon(stack):
    have = wait_for_ads(stack)
    assert ("Machine", f"slot1@{stack.pods('worker')[0]['metadata']['name']}") in have


def test_the_slot_has_the_worker_containers_cpus_and_memory(stack):
    wait_for_ads(stack)
    result = stack.kubectl("-n", NAMESPACE, "exec", f"deploy/{CM}", "--", "condor_status", "-af",
                           "PartitionableSlot", "TotalSlotCpus", "TotalSlotMemory")
    assert result.stdout.split() == ["true", "1", "1024"]  # 500m rounded up, 1Gi: the container's


def test_the_central_manager_address_resolves_in_the_pods(stack):
    host, port = stack.rendered.outputs["central_manager_address"].rsplit(":", 1)
    service = stack.kubectl.json("-n", NAMESPACE, "get", "service", stack.rendered.outputs["service_name"])
    resolved = stack.pod("schedd").exec(["getent", "hosts", host])
    assert resolved.returncode == 0, resolved.stderr
    assert resolved.stdout.split()[0] == service["spec"]["clusterIP"]
    assert port == "9618"


def test_every_pod_runs_under_seccomp_with_only_its_roles_privileges(stack):
    """The runtime applies each securityContext: the RuntimeDefault seccomp filter, no
    capability outside the role's, no new privileges, a read-only image."""
    wait_for_ads(stack)
    numbers = {name: number for number, name in enumerate(CAPABILITIES)}
    for role, component in (("centralManager", "central-manager"), ("schedd", "schedd"), ("worker", "worker")):
        allowed = sum(1 << numbers[c] for c in ROLE_CAPABILITIES.get(role, {}))
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


def test_each_role_holds_only_its_credential_and_can_do_only_what_its_role_does(stack):
    """The signing key only in the central manager; the schedd's and a worker's tokens read by
    HTCondor, and limited: no Scheduler ad from a worker, no Machine ad from the schedd, no
    administration of the central manager or the schedd from a worker, no foreign token."""
    wait_for_ads(stack)
    host = stack.rendered.outputs["central_manager_address"].rsplit(":", 1)[0]
    submit, execute = (TOKEN_HOLDERS[r].subject(host) for r in ("schedd", "worker"))
    cm, schedd, worker = (stack.pod(c) for c in ("central-manager", "schedd", "worker"))
    key = [stack.password.encode(), scramble(stack.password)]
    assert files_holding(schedd, key) == [] and files_holding(worker, key) == []
    assert manifests.credential_file("centralManager") in files_holding(cm, key)
    assert token_subjects(schedd) == [submit] and token_subjects(worker) == [execute]

    assert denied_to(advertise(worker, "UPDATE_SCHEDD_AD"), execute)
    assert denied_to(advertise(schedd, "UPDATE_STARTD_AD"), submit)
    table = authorizations(worker, address_of(worker, "master", cm.name))
    assert {level for level, who in table.items() if who} == {"READ", "ADVERTISE_MASTER", "ADVERTISE_STARTD"}
    assert set(authorizations(worker, address_of(worker, "schedd", schedd.name)).values()) == {None}

    foreign = idtokens.mint("another-pools-password", host, execute, TOKEN_HOLDERS["worker"].scopes)
    worker.exec(["sh", "-c", "mkdir -p /tmp/foreign && cat > /tmp/foreign/token && chmod 600 /tmp/foreign/token"],
                stdin=foreign + "\n")
    result = advertise(worker, "UPDATE_STARTD_AD", token_dir="/tmp/foreign")
    assert "Failed to authenticate using IDTOKENS" in result.stdout + result.stderr
    fakes = [name for _, name in ads(stack) if "fake" in name]
    assert not fakes, fakes


def pod_templates(rendered) -> dict[str, dict]:
    """Each Deployment's pod template, by component."""
    return {d.inputs["metadata"]["labels"][COMPONENT]: d.inputs["spec"]["template"]
            for d in rendered.of_type("kubernetes:apps/v1:Deployment")}


def test_pod_security_admission_enforces_what_each_pod_meets(stack):
    """The API server's Pod Security Admission, not our reading of the standard: the pool's
    namespace enforces the strongest level all its pods meet (they run), and a namespace
    enforcing `restricted` admits the central manager and unprivileged workers and refuses
    the schedd and root workers with the standard's reasons."""
    labels = stack.kubectl.json("get", "namespace", NAMESPACE)["metadata"]["labels"]
    assert {k: v for k, v in labels.items() if k.startswith("pod-security.kubernetes.io/")} == {
        "pod-security.kubernetes.io/enforce": "baseline",  # the schedd's root, with capabilities
        "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted"}
    wait_for_ads(stack)  # every pod of the pool was admitted, and runs

    restricted = "psa-restricted"
    stack.kubectl("create", "namespace", restricted)
    try:
        stack.kubectl("label", "namespace", restricted, "pod-security.kubernetes.io/enforce=restricted")
        templates = pod_templates(stack.rendered)
        unprivileged = pod_templates(render({**stack.config, "unprivilegedWorkers": "true"}))["worker"]

        def admitted(template: dict, name: str) -> subprocess.CompletedProcess:
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "namespace": restricted, "labels": template["metadata"]["labels"]},
                   "spec": template["spec"]}
            return stack.kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod), check=False)

        for name, template in (("central-manager", templates["central-manager"]),
                               ("unprivileged-worker", unprivileged)):
            result = admitted(template, name)
            assert result.returncode == 0, (name, result.stderr)
        for name, template in (("schedd", templates["schedd"]), ("worker", templates["worker"])):
            result = admitted(template, name)
            assert result.returncode != 0 and 'violates PodSecurity "restricted:latest"' in result.stderr, \
                (name, result.stderr)
            for reason in ("unrestricted capabilities", "runAsNonRoot != true"):
                assert reason in result.stderr, (name, reason, result.stderr)
    finally:
        stack.kubectl("delete", "namespace", restricted, "--wait=false", check=False)


def test_a_job_submitted_through_kubectl_exec_runs_and_its_output_comes_back(stack):
    wait_for_ads(stack)
    schedd = stack.pod("schedd")
    cluster_id = submit(schedd, "hello", SLEEPER, sleeper_submit(1, tag="hello"))
    (row,) = wait_completed(schedd, cluster_id, 1)
    assert row[1:3] == ["4", "0"], row  # completed, exit code 0
    assert output(schedd, "hello.out.0").startswith("slept 1s on htcondor-worker-")


def test_scaling_to_two_workers_and_back_to_one_loses_no_job(stack):
    stack.up(workers="2")
    assert len(wait_until(lambda: {n for t, n in ads(stack) if t == "Machine"} if len(
        {n for t, n in ads(stack) if t == "Machine"}) == 2 else None, 120, 1, "two slots")) == 2
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


def test_rotating_the_password_rolls_every_pod_and_the_pool_runs_a_job(stack):
    wait_for_ads(stack)
    before = {p["metadata"]["name"] for role in ("central-manager", "schedd", "worker") for p in stack.pods(role)}
    stack.password = random_password()  # passwordVersion is the RandomPassword's keeper
    stack.up(passwordVersion="2")
    after = {p["metadata"]["name"] for role in ("central-manager", "schedd", "worker") for p in stack.pods(role)}
    assert len(after) == 3 and not before & after, (before, after)
    for role, component in (("centralManager", "central-manager"), ("schedd", "schedd"), ("worker", "worker")):
        # The new key in the central manager; tokens re-minted from it in the others.
        held = held_credential(stack.pod(component), role)
        assert held == rendered_credential(stack.rendered, role), role
        if role == "centralManager":
            assert held == scramble(stack.password)
        else:
            idtokens.verify(held.decode(), stack.password)
    wait_for_ads(stack, timeout=180)
    schedd = stack.pod("schedd")
    cluster_id = submit(schedd, "rotated", SLEEPER, sleeper_submit(1, tag="rotated"))
    (row,) = wait_completed(schedd, cluster_id, 1)
    assert row[1:3] == ["4", "0"], row


def test_unprivileged_workers_run_their_jobs_as_condor(stack):
    """`unprivilegedWorkers: true` on the real kubelet (fsGroup, runAsNonRoot, no
    capability): the workers roll, the pool re-forms, and a job runs as the condor user."""
    stack.up(unprivilegedWorkers="true")
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


def test_destroy_removes_every_object_and_a_second_up_works(stack):
    claim = stack.kubectl.json("-n", NAMESPACE, "get", "pvc", "htcondor-schedd-spool")
    volume = claim["spec"]["volumeName"]
    stack.deployer.destroy()
    assert "NotFound" in stack.kubectl("get", "namespace", NAMESPACE, check=False).stderr
    # The claim went with the namespace; its volume was released, wiped and offered again.
    wait_until(lambda: stack.kubectl.json("get", "pv", volume)["status"]["phase"] == "Available",
               60, 1, f"volume {volume} to be available again")
    claimed = [pv["metadata"]["name"] for pv in stack.kubectl.json("get", "pv")["items"]
               if pv["spec"].get("claimRef", {}).get("namespace") == NAMESPACE]
    assert not claimed, claimed
    stack.up()
    wait_for_ads(stack)
