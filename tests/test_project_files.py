"""Pulumi.yaml, the stack file and requirements agree with the code."""

from importlib import metadata

import pytest
import yaml

from tests.render import REPO, render

PROJECT = yaml.safe_load((REPO / "Pulumi.yaml").read_text())


def test_project_is_python_with_pip_and_a_virtualenv():
    assert PROJECT["name"] == "htcondor-pool"
    assert PROJECT["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}


def readme_outputs() -> list[str]:
    """The outputs README's "Outputs" table lists, in order."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Outputs\n", 1)[1].split("\n## ", 1)[0]
    return [line.split("|")[1].strip(" `") for line in section.splitlines() if line.startswith("| `")]


def test_readme_lists_every_output_and_no_other(dev):
    assert sorted(readme_outputs()) == sorted(dev.outputs)


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


def test_python_sources_name_nothing_undefined_and_import_nothing_unused():
    # An undefined name only fails when its line runs: a test that needs a real pool can
    # then fail in CI for a reason a one-second check finds (a moved helper once did).
    from pyflakes.api import checkPath
    from pyflakes.reporter import Reporter
    import io
    out = io.StringIO()
    sources = [path for top in ("pool", "tests", "bench") for path in sorted((REPO / top).rglob("*.py"))]
    problems = sum(checkPath(str(path), Reporter(out, out))
                   for path in [REPO / "__main__.py", REPO / "package" / "__main__.py", *sources])
    assert problems == 0, out.getvalue()


def test_the_readmes_component_example_runs_as_written(tmp_path):
    readme = (REPO / "README.md").read_text()
    example = readme.split("## Using the component", 1)[1].split("```python\n", 1)[1].split("\n```", 1)[0]
    program = tmp_path / "example.py"
    program.write_text(example)
    rendered = render(stack=None, program=program)
    (worker,) = [d.inputs for d in rendered.of_type("kubernetes:apps/v1:Deployment") if d.name == "batch-worker"]
    assert worker["metadata"]["namespace"] == "batch" and worker["spec"]["replicas"] == 4
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "htcondor/execute:25.0.15-el9"
    assert {k: container["resources"]["limits"][k] for k in ("cpu", "memory")} == {"cpu": "4", "memory": "16Gi"}
