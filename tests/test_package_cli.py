"""The package through the real Pulumi CLI, offline (no cluster: the Kubernetes provider
previews without one): the CLI, its Python, YAML and Node.js language hosts and the
providers built as the real cluster's are (tests/kube/build.py), each program in a copy of
the checkout's package files (tests/kube/pulumi.py's ExampleProject).

- `pulumi package get-schema package/` serves pool/package.py's schema;
- `pulumi package add` adds the package to a YAML program as examples/yaml names it;
- `pulumi preview` of examples/yaml plans the tree a Python stack of the same config holds;
- bad input fails `pulumi preview` and `pulumi up` with one line naming the input;
- TypeScript: `pulumi package add` generates the SDK, examples/typescript type-checks
  against it (tsc) and previews the same tree.

Installing the package (`package add`, `get-schema`) upgrades pip, setuptools and wheel in
its virtualenv from PyPI, and the TypeScript program's `npm install` reads npm's registry.
"""

import json
import os
import shutil
import subprocess

import pytest
import yaml

from pool import package
from tests.kube import build
from tests.kube.pulumi import ExampleProject, PulumiError, install_providers
from tests.render import REPO
from tests.test_kube_bad_input import diagnostics
from tests.test_package import EXAMPLE, example_inputs, named, python_tree

PULUMI = ("pulumi", "pulumi-language-python", "pulumi-language-yaml", "pulumi-language-nodejs",
          "pulumi-kubernetes", "pulumi-random")
TYPESCRIPT = REPO / "examples" / "typescript"
# The CLI and its language hosts are built from source (tests/kube/build.py): these tests run
# after the others, while a machine that lacks them builds them (tests/conftest.py).
pytestmark = pytest.mark.built_from_source


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory) -> dict[str, str]:
    """The built CLI first on PATH, the providers in a PULUMI_HOME of the module's own, and
    a kubeconfig that names no cluster."""
    binaries = build.build_all(only=PULUMI)
    root = tmp_path_factory.mktemp("pulumi-offline")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PULUMI_", "KUBERNETES_"))}
    env.update({"PATH": f"{binaries.path}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
                "PULUMI_HOME": str(root / "pulumi-home"), "KUBECONFIG": str(root / "no-cluster"),
                "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true"})
    install_providers(binaries.providers(), {**env, "HOME": str(root)})
    return env


@pytest.fixture(scope="module")
def yaml_example(offline_env, tmp_path_factory) -> ExampleProject:
    return ExampleProject.create(tmp_path_factory.mktemp("yaml-example"), offline_env, "dev", example="yaml")


def planned(project: ExampleProject) -> set[tuple]:
    """`pulumi preview --json`: each object it would create, and its parent, as `named` gives them."""
    steps = json.loads(project.pulumi("preview", "--json", timeout=300).stdout)["steps"]
    assert {step["op"] for step in steps} == {"create"}
    return {(named(step["urn"]), named(step["newState"]["parent"])) for step in steps
            if step["newState"]["type"] != "pulumi:pulumi:Stack"}


def without_empty(value):
    """A schema as the CLI prints it: what is empty ([], {}) left out."""
    if isinstance(value, dict):
        return {k: without_empty(v) for k, v in value.items() if v not in ([], {})}
    return value


def test_get_schema_serves_the_schema_built_from_the_settings(yaml_example):
    shown = yaml_example.pulumi("package", "get-schema", str(yaml_example.checkout / "package"), timeout=300)
    assert without_empty(json.loads(shown.stdout)) == without_empty(package.schema())


def test_package_add_adds_it_to_a_yaml_program_as_the_example_names_it(yaml_example):
    fresh = yaml_example.checkout / "examples" / "fresh"
    fresh.mkdir()
    (fresh / "Pulumi.yaml").write_text("name: fresh\nruntime: yaml\n")
    added = ExampleProject(yaml_example.root, yaml_example.env, "dev", "fresh").pulumi(
        "package", "add", "../../package", timeout=300)
    assert "Added package HTCondor pool" in added.stdout + added.stderr
    assert yaml.safe_load((fresh / "Pulumi.yaml").read_text())["packages"] == EXAMPLE["packages"]


def test_the_yaml_example_previews_the_tree_of_a_python_stack_of_the_same_config(yaml_example):
    assert planned(yaml_example) == python_tree(example_inputs())
    shown = yaml_example.pulumi("preview", timeout=300).stdout
    assert 'central_manager_address     : "htcondor-central-manager.htcondor-yaml.svc.cluster.local:9618"' in shown
    assert "+ 30 to create" in shown


@pytest.mark.parametrize("change,message", [
    ({"config": ("workers", "-1")}, "workers: -1 is not allowed; expected a whole number >= 0"),
    ({"properties": {"workerPools": {"gpu": {"gpus": "many"}}}},
     "workerPools.gpu.gpus: 'many' is not allowed; expected a whole number >= 0"),
    ({"properties": {"namespace": "Batch_Jobs"}}, "namespace: 'Batch_Jobs' is not allowed; expected a DNS-1123 label: "
     "at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"),
], ids=["workers", "workerPools", "namespace"])
def test_bad_input_fails_preview_and_up_with_stack_configs_line_naming_the_input(yaml_example, change, message):
    project, original = yaml_example, (yaml_example.directory / "Pulumi.yaml").read_text()
    if "config" in change:
        project.config_set(*change["config"])
    else:
        program = project.program
        program["resources"]["htcondor"]["properties"].update(change["properties"])
        project.write_program(program)
    try:
        for command in (["preview"], ["up", "--yes"]):
            result = project.pulumi(*command, check=False, timeout=300)
            assert result.returncode != 0, result.stdout
            errors = [line for line in diagnostics(result.stdout) if line.startswith("error:")]
            assert errors == [f"error: htcondor:index:Pool resource 'htcondor' has a problem: {message}"], (
                result.stdout, result.stderr)
            for noise in ("Traceback", "Unexpected <class", 'File "', "PoolConfigError", "InputPropertiesError"):
                assert noise not in result.stdout + result.stderr, noise
        exported = json.loads(project.pulumi("stack", "export").stdout)["deployment"].get("resources") or []
        assert [r["type"] for r in exported if r["type"] != "pulumi:pulumi:Stack"] == []
    finally:
        (project.directory / "Pulumi.yaml").write_text(original)
        if "config" in change:
            project.pulumi("config", "rm", change["config"][0])


@pytest.fixture(scope="module")
def typescript_example(offline_env, tmp_path_factory) -> ExampleProject:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("TypeScript needs Node.js and npm (docs/package.md)")
    project = ExampleProject.create(tmp_path_factory.mktemp("typescript-example"), offline_env, "dev",
                                    example="typescript")
    # Generates sdks/htcondor, links it into package.json and installs (npm install).
    added = project.pulumi("package", "add", "../../package", timeout=600)
    assert 'import * as htcondor from "@pulumi/htcondor";' in added.stdout + added.stderr
    return project


def test_typescript_type_checks_against_the_generated_sdk(typescript_example):
    checked = subprocess.run(["npx", "--no-install", "tsc", "--noEmit", "-p", "."], cwd=typescript_example.directory,
                             env=typescript_example.pulumi_env, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The SDK's types are the schema's: a count given as text does not compile.
    wrong = typescript_example.directory / "wrong.ts"
    wrong.write_text((typescript_example.directory / "index.ts").read_text().replace(
        'config.getNumber("workers") ?? 1', '"two"'))
    refused = subprocess.run(["npx", "--no-install", "tsc", "--noEmit", "--strict", "--module", "commonjs",
                              "--target", "es2020", "--moduleResolution", "node", "wrong.ts"],
                             cwd=typescript_example.directory, env=typescript_example.pulumi_env,
                             capture_output=True, text=True, timeout=300)
    wrong.unlink()
    assert "error TS2322: Type 'string' is not assignable to type 'Input<number | undefined>'" in refused.stdout


def test_typescript_previews_the_tree_of_a_python_stack_of_the_same_config(typescript_example):
    inputs = {**example_inputs(), "namespace": "htcondor-typescript"}
    assert planned(typescript_example) == python_tree(inputs)


def test_a_missing_package_virtualenv_is_made_by_package_add_not_preview(yaml_example):
    """Why the tests make the package's virtualenv (tests/kube/pulumi.py): `pulumi preview`
    runs the package in it, and only an install (`pulumi package add`, `pulumi install`)
    makes it."""
    venv = yaml_example.checkout / "package" / "venv"
    moved = venv.with_name("venv.aside")
    venv.rename(moved)
    try:
        with pytest.raises(PulumiError):
            yaml_example.pulumi("preview", timeout=300)
    finally:
        shutil.rmtree(venv, ignore_errors=True)
        moved.rename(venv)
