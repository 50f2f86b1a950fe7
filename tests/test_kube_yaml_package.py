"""A Pulumi user who writes no Python, on the real cluster through the real `pulumi`: the
YAML program of examples/yaml (README shows it verbatim) uses the component as a package.

In a copy of the checkout's package files and the example, with nothing changed but the
cluster's local image added to its properties (nothing can be pulled here), with the
commands that user types:

- `pulumi package add ../../package` installs the package (its virtualenv, from PyPI, as a
  user's) and writes the `packages:` line the example has;
- `pulumi up --yes` forms the pool: every daemon's ad, the worker pool's slot too; the stack
  holds the objects a Python stack of the same config holds, under the same components;
- `pulumi stack output` gives the example's outputs, the pool password hidden without
  `--show-secrets` and, shown, the key in the cluster's Secret;
- `pulumi config set workers 2 && pulumi up --yes` scales the default worker pool;
- `pulumi destroy --yes` removes the namespace and every object.

After every `up`, `pulumi preview --expect-no-changes` passes.
"""

import base64
import json

import pytest

from pool.defaults import ROLES
from pool.password import unscramble
from pool.roles import shared
from tests.htcondor_jobs import QueryFailed, when_answered
from tests.kube.kubectl import Kubectl
from tests.kube.pulumi import UP_TIMEOUT, ExampleProject
from tests.podsim.kubelet import wait_until
from tests.test_package import EXAMPLE, example_inputs, named, python_tree

POOL = "htcondor"  # the example's resource: objects are named htcondor-...
NAMESPACE = EXAMPLE["resources"][POOL]["properties"]["namespace"]
CM = f"{POOL}-central-manager"
COMPONENT = "app.kubernetes.io/component"


@pytest.fixture(scope="module")
def stack(kube_cluster):
    cluster, env = kube_cluster
    project = ExampleProject.create(cluster.workdir / "projects" / "yaml-package", env, "dev", example="yaml",
                                    linked_virtualenv=False)
    # As a user's: the package's virtualenv made from requirements.txt (PyPI), its schema read.
    added = project.pulumi("package", "add", "../../package", timeout=600)
    assert (project.checkout / "package" / "venv" / "bin" / "python").exists()
    assert "Added package" in added.stdout + added.stderr, added.stdout + added.stderr
    assert project.program["packages"] == EXAMPLE["packages"]
    program = project.program
    program["resources"][POOL]["properties"]["images"] = {role: env["HTCONDOR_POOL_TEST_IMAGE"] for role in ROLES}
    project.write_program(program)
    kubectl = Kubectl(env)
    try:
        project.up()
        yield project, kubectl
    finally:
        project.pulumi("destroy", "--yes", check=False, timeout=UP_TIMEOUT)


def ads(kubectl: Kubectl) -> set[tuple[str, str]]:
    """(MyType, Name) of every ad `condor_status -any` shows in the central manager's pod."""
    result = kubectl("-n", NAMESPACE, "exec", f"deploy/{CM}", "--", "condor_status", "-any",
                     "-af", "MyType", "Name", check=False, timeout=60)
    if result.returncode != 0:
        raise QueryFailed(f"condor_status -any failed ({result.returncode}): {result.stderr.strip()}")
    return {tuple(line.split(None, 1)) for line in result.stdout.splitlines() if line.strip()}


def pods(kubectl: Kubectl, component: str) -> list[str]:
    return [p["metadata"]["name"] for p in kubectl.pods(NAMESPACE, f"{COMPONENT}={component}")]


def expected_ads(kubectl: Kubectl, workers: int) -> set[tuple[str, str]] | None:
    """The ads of the pods running now, or None until there is one central manager, one
    schedd, `workers` default workers and the worker pool's one."""
    cm, schedd = pods(kubectl, "central-manager"), pods(kubectl, "schedd")
    default, small = pods(kubectl, "worker"), pods(kubectl, "worker-small")
    if (len(cm), len(schedd), len(default), len(small)) != (1, 1, workers, 1):
        return None
    want = {("Collector", f"HTCondor on Kubernetes@{cm[0]}"), ("Negotiator", cm[0]), ("DaemonMaster", cm[0]),
            ("Scheduler", schedd[0]), ("DaemonMaster", schedd[0])}
    for worker in default + small:
        want |= {("DaemonMaster", worker), ("Machine", f"slot1@{worker}")}
    return want


def wait_for_every_ad(kubectl: Kubectl, workers: int, timeout: float = 180) -> set[tuple[str, str]]:
    """Every daemon's ad, with `workers` default workers and the worker pool's one; a query
    that fails meanwhile counts as "not yet"."""
    seen: dict = {}

    def complete():
        seen["want"] = expected_ads(kubectl, workers)
        seen["have"] = when_answered(lambda: ads(kubectl))
        return seen["have"] if seen["want"] and seen["have"] and seen["want"] <= seen["have"] else None
    try:
        return wait_until(complete, timeout, 1, "every ad")
    except TimeoutError:
        raise TimeoutError(f"after {timeout}s: want {sorted(seen.get('want') or [])}, "
                           f"have {sorted(seen.get('have') or [])}") from None


def test_up_forms_the_pool_with_every_daemon_and_the_worker_pools_slot(stack):
    project, kubectl = stack
    have = wait_for_every_ad(kubectl, workers=1)
    assert len([name for kind, name in have if kind == "Machine"]) == 2


def test_the_stack_holds_what_a_python_stack_of_the_same_config_holds(stack):
    project, _ = stack
    exported = json.loads(project.pulumi("stack", "export").stdout)["deployment"]["resources"]
    held = {(named(r["urn"]), named(r["parent"])) for r in exported
            if r["type"] != "pulumi:pulumi:Stack" and not r["type"].startswith("pulumi:providers:")}
    assert held == python_tree(example_inputs())
    assert (("htcondor:index:Pool", POOL), ("stack", "")) in held


def test_stack_output_gives_the_examples_outputs_the_password_secret(stack):
    project, kubectl = stack
    shown = project.pulumi("stack", "output", "--json").stdout
    outputs = json.loads(shown)
    assert set(outputs) == set(EXAMPLE["outputs"])
    assert outputs["pool_password"] == "[secret]"
    assert outputs["central_manager_address"] == f"{CM}.{NAMESPACE}.svc.cluster.local:9618"
    assert (outputs["namespace"], outputs["workers"]) == (NAMESPACE, 1)
    assert outputs["worker_pool_deployment_names"] == {"default": f"{POOL}-worker", "small": f"{POOL}-worker-small"}
    password = project.output("pool_password")
    assert password and password not in shown
    secret = kubectl.json("-n", NAMESPACE, "get", "secret", shared.credential_secret_name(POOL, "centralManager"))
    (value,) = secret["data"].values()
    assert unscramble(base64.b64decode(value)) == password


def test_a_changed_workers_scales_the_default_pool(stack):
    project, kubectl = stack
    project.up(workers="2")  # `pulumi config set workers 2`, `pulumi up --yes`
    have = wait_for_every_ad(kubectl, workers=2)
    assert len([name for kind, name in have if kind == "Machine"]) == 3
    assert project.outputs()["workers"] == 2


def test_destroy_removes_the_namespace_and_every_object(stack):
    project, kubectl = stack
    project.destroy()
    wait_until(lambda: "NotFound" in kubectl("get", "namespace", NAMESPACE, check=False).stderr,
               180, 1, f"namespace {NAMESPACE} to be gone")
    assert json.loads(project.pulumi("stack", "output", "--json").stdout) == {}
    exported = json.loads(project.pulumi("stack", "export").stdout)["deployment"].get("resources") or []
    assert [r["type"] for r in exported if r["type"] != "pulumi:pulumi:Stack"] == []
