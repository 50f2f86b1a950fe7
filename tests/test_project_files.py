"""Pulumi.yaml, the stack file and requirements agree with the code."""

from importlib import metadata

import pytest
import yaml

from pool.args import HTCondorPoolArgs
from pool.stack_config import DEFAULT_NAME, KEYS
from tests.render import REPO, render

PROJECT = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
STRUCTURED = {"images", "resources"}  # Pulumi.yaml cannot declare object-typed config


def test_project_is_python_with_pip_and_a_virtualenv():
    assert PROJECT["name"] == "htcondor-pool"
    assert PROJECT["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}


def test_every_scalar_key_is_declared_with_type_default_and_description():
    declared = PROJECT["config"]
    assert set(declared) == set(KEYS) - STRUCTURED
    for key, spec in declared.items():
        assert {"type", "default", "description"} <= set(spec), key


def test_declared_defaults_are_the_codes_defaults():
    defaults = HTCondorPoolArgs()
    code = {"name": DEFAULT_NAME, "namespace": defaults.namespace, "createNamespace": defaults.create_namespace,
            "workers": defaults.workers, "poolName": defaults.pool_name,
            "workerGracePeriodSeconds": defaults.worker_grace_period_seconds,
            "passwordVersion": defaults.password_version, "scheddSpoolSize": defaults.schedd_spool_size,
            # Unset (None) in code; an empty string in Pulumi.yaml, which the loader reads as unset.
            "scheddStorageClass": defaults.schedd_storage_class or "",
            "scheddSpoolAccessMode": defaults.schedd_spool_access_mode,
            "networkPolicy": defaults.network_policy, "updateIntervalSeconds": defaults.update_interval_seconds, "allowedCidrs": list(defaults.allowed_cidrs),
            "unprivilegedWorkers": defaults.unprivileged_workers}
    assert {k: v["default"] for k, v in PROJECT["config"].items()} == code
    # And a stack with no config at all renders exactly those.
    rendered = render(stack=None)
    assert rendered.outputs["workers"] == code["workers"]
    assert rendered.outputs["namespace"] == code["namespace"]


def test_structured_keys_are_documented_in_pulumi_yaml_and_readme():
    text = (REPO / "Pulumi.yaml").read_text()
    readme = (REPO / "README.md").read_text()
    for key in STRUCTURED:
        assert f"{key}:" in text and f"`{key}`" in readme


def test_readme_lists_every_config_key():
    readme = (REPO / "README.md").read_text()
    for key in KEYS:
        assert f"`{key}`" in readme, key


def test_readme_lists_every_output(dev):
    readme = (REPO / "README.md").read_text()
    for name in dev.outputs:
        assert f"`{name}`" in readme, name


def test_dev_stack_has_one_worker():
    stack = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    assert stack["config"]["htcondor-pool:workers"] == "1"


@pytest.mark.parametrize("line", [l for l in (REPO / "requirements.txt").read_text().splitlines()
                                  if l and not l.startswith("#")])
def test_installed_versions_are_inside_the_declared_ranges(line):
    from packaging.requirements import Requirement
    requirement = Requirement(line)
    assert requirement.specifier.contains(metadata.version(requirement.name)), line


def readme_test_command() -> str:
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- test-command -->", 1)[1].split("```sh\n", 1)[1].split("\n```", 1)[0]
    assert "\n" not in block.strip()
    return block.strip()


def test_ci_runs_the_readmes_test_command():
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert readme_test_command() in ci
