"""`python -m tests.render`, which hands policy scanners the objects a stack would create."""

import subprocess
import sys

import yaml

from tests.render import REPO


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.render", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_it_prints_every_kubernetes_object_of_the_stack_with_the_config_given():
    result = run("workers=3")
    assert result.returncode == 0, result.stderr
    objects = list(yaml.safe_load_all(result.stdout))
    kinds = sorted(o["kind"] for o in objects)
    assert kinds.count("Deployment") == 4 and "NetworkPolicy" in kinds and "Secret" in kinds, kinds
    (worker,) = [o for o in objects if o["metadata"]["name"] == "htcondor-worker"]
    assert worker["spec"]["replicas"] == 3


def test_a_bad_argument_or_config_value_is_refused_naming_it():
    assert "'workers' is not KEY=VALUE" in run("workers").stderr
    refused = run("workers=-1")
    assert refused.returncode == 1 and refused.stdout == "", refused
    assert refused.stderr == ("error: htcondor-pool:workers: -1 is not allowed; "
                              "expected a whole number >= 0\n"), refused.stderr
