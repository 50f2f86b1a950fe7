"""Bad stack config through the real Pulumi CLI, against the real cluster: `pulumi preview`
and `pulumi up` each fail before anything is created, with one line naming the key, the
value and what is allowed, as Pulumi's own config errors read, and no traceback."""

import json

import pytest

from tests.kube.kubectl import Kubectl
from tests.kube.pulumi import Project

NAMESPACE = "bad-input"  # the stack's namespace, were anything created
CASES = [
    ("workers", "-1", "htcondor-pool:workers: -1 is not allowed; expected a whole number >= 0"),
    ("worker", "3", "htcondor-pool:worker: '3' is not allowed; expected a known key: one of name, namespace, "),
    ("workerPools", '{"gpu": {"gpus": "many"}}',
     "htcondor-pool:workerPools.gpu.gpus: 'many' is not allowed; expected a whole number >= 0"),
]


@pytest.fixture(scope="module")
def project(kube_cluster):
    cluster, env = kube_cluster
    project = Project.create(cluster.workdir / "projects" / "bad-input", env, "bad-input")
    project.config_set("namespace", NAMESPACE)
    # The probe works: with good config the same stack previews, against the same cluster.
    preview = project.pulumi("preview", timeout=300)
    assert "error:" not in preview.stdout, preview.stdout
    return project, Kubectl(env)


def stack_resources(project: Project) -> list[str]:
    """The types of the resources in the stack's state (`pulumi stack export`)."""
    exported = json.loads(project.pulumi("stack", "export").stdout)
    return [r["type"] for r in exported["deployment"].get("resources") or []]


def diagnostics(output: str) -> list[str]:
    """The lines of the CLI's "Diagnostics:" section, where it reports a program's errors."""
    section = output.split("\nDiagnostics:\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in section.splitlines()]


@pytest.mark.parametrize("key,value,message", CASES, ids=[key for key, _, _ in CASES])
def test_bad_config_fails_preview_and_up_with_one_line_and_creates_nothing(project, key, value, message):
    project, kubectl = project
    project.config_set(key, value)
    try:
        for command in (["preview"], ["up", "--yes"]):
            result = project.pulumi(*command, check=False, timeout=300)
            shown = result.stdout + result.stderr
            assert result.returncode != 0, shown
            errors = [line for line in diagnostics(result.stdout) if line.startswith("error:")]
            # The program's one line, then the CLI's own note that the program exited 1, as
            # for Pulumi's own config errors (ConfigMissingError is a RunError too).
            assert len(errors) == 2, errors
            assert errors[0].startswith(f"error: {message}"), errors
            assert errors[1] == "error: an unhandled error occurred: program exited with non-zero exit code: 1"
            for noise in ("Traceback", "unhandled exception", 'File "', "PoolConfigError"):
                assert noise not in shown, (noise, shown)
        assert [t for t in stack_resources(project) if t != "pulumi:pulumi:Stack"] == []
        assert "NotFound" in kubectl("get", "namespace", NAMESPACE, check=False).stderr
    finally:
        project.pulumi("config", "rm", key)
