"""No change for running pools (issue 30), on the real cluster (tests/kube) through `pulumi`:
a stack created by the program as it was before the component tree (BEFORE_TREE), with a
job running, is taken to this tree's program. `pulumi preview` shows no Kubernetes or
random object created, updated, replaced or deleted, only the role components created (each
moved object is found under its former URN by its alias: tests/test_component_tree.py);
`pulumi up` then leaves every pod as it was (the same UIDs), the job runs on to its end,
started once, and the stack's state groups each role's objects under its component, as
the program registers them under the mocks. `pulumi destroy` then takes everything.

BEFORE_TREE is the last commit of the program before the tree (the one the golden renders
of tests/golden/ are written from; move both together): its files are taken with `git
archive`, so the clone must hold it (a shallow clone fails here, saying so)."""

import json
import subprocess

import pytest

from tests.conftest import REPORTS
from tests.htcondor_jobs import job_rows, submit_finish_when_told, tell_to_finish, wait_completed, wait_running
from tests.kube.kubectl import KubePod, Kubectl
from tests.kube.pulumi import PROGRAM_FILES, REPO, UP_TIMEOUT, Project
from tests.render import render
from tests.test_kube_walkthrough import local_image_config

BEFORE_TREE = "1939359b88cac9e2ca8a39d2a8d52aa1dc780932"
NAMESPACE = "upgrade"
# The job runs until told, through the preview, the up and the preview after it, whatever
# they take; this bounds it.
JOB_SECONDS = 600
COMPONENT = "htcondor:index:"
# The roles' components the new program adds to this stack (default pool, metrics, policies).
NEW_COMPONENTS = {"Credentials", "NetworkPolicies", "CentralManager", "Schedd", "WorkerPool", "Metrics"}


def program_at(commit: str, directory) -> None:
    """The program's files (tests/kube/pulumi.py's PROGRAM_FILES) as `commit` has them."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit, *PROGRAM_FILES],
                             capture_output=True)
    if archive.returncode != 0:
        pytest.fail(f"git archive {commit} failed (is the clone shallow?): {archive.stderr.decode().strip()}")
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive.stdout, check=True)


def kind(urn: str) -> str:
    """A URN's own type (the last of its qualified type)."""
    return urn.split("::")[2].split("$")[-1]


def name(urn: str) -> str:
    return urn.rpartition("::")[2]


class Upgrade:
    def __init__(self, project: Project, kubectl: Kubectl):
        self.project, self.kubectl = project, kubectl
        self.schedd = KubePod(kubectl, NAMESPACE, "deploy/htcondor-schedd")
        self.job = ""
        self.job_host = ""
        self.pods_before: dict[str, str] = {}

    def pods(self) -> dict[str, str]:
        """Every pod of the namespace: name -> UID."""
        return {p["metadata"]["name"]: p["metadata"]["uid"]
                for p in self.kubectl.json("-n", NAMESPACE, "get", "pods")["items"]}

    def diagnostics(self) -> str:
        return self.kubectl("get", "all,pvc,events", "-n", NAMESPACE, "-o", "wide", check=False).stdout


@pytest.fixture(scope="module")
def upgrade(kube_cluster):
    cluster, env = kube_cluster
    root = cluster.workdir / "projects" / "upgrade"
    before = root / "before-tree"
    program_at(BEFORE_TREE, before)
    project = Project.create(root, env, "dev", source=before)
    kubectl = Kubectl(env)
    local_image_config(project, env["HTCONDOR_POOL_TEST_IMAGE"])
    # workerGracePeriodSeconds: the least, so that destroy's drain of a worker is short.
    took = project.up(namespace=NAMESPACE, workers="1", metrics="true", workerGracePeriodSeconds="60")
    REPORTS.append(f"real cluster: `pulumi up` of the program at {BEFORE_TREE[:7]}: {took:.1f}s")
    try:
        yield Upgrade(project, kubectl)
    finally:
        project.pulumi("destroy", "--yes", check=False, timeout=UP_TIMEOUT)
        kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", timeout=300, check=False)


def test_at_the_new_tree_preview_creates_only_the_role_components(upgrade):
    upgrade.job = submit_finish_when_told(upgrade.schedd, "upgrade", JOB_SECONDS)
    ((_, upgrade.job_host),) = wait_running(upgrade.schedd, upgrade.job, timeout=300)
    upgrade.pods_before = upgrade.pods()
    assert len(upgrade.pods_before) == 4, upgrade.pods_before  # central manager, schedd, worker, exporter

    upgrade.project.sync_program()  # this tree's program; the stack's config and state stay
    preview = json.loads(upgrade.project.pulumi("preview", "--json", "--show-sames", timeout=UP_TIMEOUT).stdout)
    steps = preview["steps"]
    changed = [(step["op"], step["urn"]) for step in steps if step["op"] not in ("same", "create")]
    assert not changed, changed
    created = [kind(step["urn"]) for step in steps if step["op"] == "create"]
    assert sorted(created) == sorted(f"{COMPONENT}{c}" for c in NEW_COMPONENTS), created
    # Every object is there, the same, under its new URN, found by its old one.
    objects = [step for step in steps if kind(step["urn"]).startswith(("kubernetes:", "random:"))]
    assert len(objects) == len(render_now(upgrade.project)), [s["urn"] for s in objects]
    moved = [step for step in objects if step["oldState"]["urn"] != step["urn"]]
    assert moved and all(f"{COMPONENT}Pool${kind(s['urn'])}::" in s["oldState"]["urn"] for s in moved), moved
    assert {key for key, count in preview["changeSummary"].items() if count} <= {"same", "create"}, \
        preview["changeSummary"]


def test_up_leaves_every_pod_and_the_job_runs_on_started_once(upgrade):
    took = upgrade.project.up()  # then `pulumi preview --expect-no-changes`
    REPORTS.append(f"real cluster: `pulumi up` onto the component tree, a job running: {took:.1f}s")
    assert upgrade.pods() == upgrade.pods_before
    # Still running through the upgrade: nothing stopped it.
    # (The queue's NumJobStarts may lag a running job's start: the history's is checked below.)
    rows = job_rows(upgrade.schedd, "condor_q", upgrade.job, "JobStatus")
    assert rows == [["2"]], f"the job was to run through the upgrade: {rows}"
    tell_to_finish(upgrade.schedd, "upgrade")
    ((_, status, exit_code, host, starts),) = wait_completed(upgrade.schedd, upgrade.job, 1, timeout=120)
    assert (status, exit_code, starts, host) == ("4", "0", "1", upgrade.job_host)
    assert upgrade.pods() == upgrade.pods_before


def render_now(project: Project):
    """What this tree's program registers, under the mocks, with the stack's config."""
    config = {key: value if isinstance(value, str) else json.dumps(value) for key, value in project.config().items()}
    return [r for r in render(config, stack=None).resources if not r.type.startswith(COMPONENT)]


def test_the_state_groups_each_roles_objects_under_its_component(upgrade):
    exported = json.loads(upgrade.project.pulumi("stack", "export").stdout)
    parent_of = {(r["type"], name(r["urn"])): (kind(r["parent"]), name(r["parent"]))
                 for r in exported["deployment"]["resources"] if r["type"].startswith(("kubernetes:", "random:"))}
    want = {(r.type, r.name): (kind(r.parent), name(r.parent)) for r in render_now(upgrade.project)}
    assert parent_of == want


def test_destroy_takes_everything(upgrade):
    upgrade.project.destroy()
    assert not json.loads(upgrade.project.pulumi("stack", "export").stdout)["deployment"].get("resources")
    found = upgrade.kubectl("get", "namespace", NAMESPACE, check=False)
    assert found.returncode != 0 or "Terminating" in found.stdout, found.stdout
