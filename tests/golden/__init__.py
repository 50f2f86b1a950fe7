"""What the program registers for four stack configs, as golden files: every Kubernetes
object (and the random password) with its type, logical name, inputs, options and
dependencies, and the stack's outputs. tests/test_render_identity.py compares each render
with its file, so a change that moves code (the component tree of issue 30) is proven to
leave every object of a running pool as it was: only parents, and component resources,
may differ.

The files are written on purpose only, from a chosen commit's program:

    python -m tests.golden write --from COMMIT   # the program as COMMIT has it
    python -m tests.golden write                 # the working tree's program

A snapshot names resources by (type, logical name), never by URN, and leaves out the
`htcondor:index:` components: those are what a refactoring may add or re-parent.
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The mocked RandomPassword's result: fixed, so tokens and checksums are the same in every run.
PASSWORD = "fixed-test-password"
COMPONENT_PREFIX = "htcondor:index:"
# name -> (stack file to start from, stack config on top of it)
CONFIGS = {
    "dev": ("dev", {}),
    "gpu-example": ("gpu-example", {}),
    "bursting-metrics": ("dev", {
        "workers": "0", "maxWorkers": "3", "metrics": "true", "metricsServiceMonitor": "true",
        "workerPools": json.dumps({"gpu": {"workers": 0, "maxWorkers": 2, "gpus": 1, "cpu": "2", "memory": "4Gi"}}),
    }),
    "no-policy-existing-namespace": ("dev", {"networkPolicy": "false", "createNamespace": "false"}),
}
# Of a RegisterResourceRequest, the options that shape what the engine does with an object
# (besides its inputs, parent and dependencies).
OPTIONS = ("custom", "protect", "provider", "version", "deleteBeforeReplace", "ignoreChanges",
           "additionalSecretOutputs", "customTimeouts", "replaceOnChanges", "retainOnDelete", "deletedWith",
           "importId", "hideDiffs", "replaceWith")


def path(config: str) -> Path:
    return HERE / f"{config}.json"


def snapshot(config: str) -> dict:
    """The render of one of CONFIGS, as its golden file holds it."""
    from google.protobuf import json_format

    stack, overrides = CONFIGS[config]
    rendered, requests = _render(overrides, stack)
    by_urn = {r.urn: f"{r.type}::{r.name}" for r in rendered.resources}
    named = lambda urns: sorted(by_urn.get(urn, urn) for urn in urns)  # noqa: E731
    resources = []
    for r in rendered.resources:
        if r.type.startswith(COMPONENT_PREFIX):
            continue
        request = json_format.MessageToDict(requests[r.urn])
        resources.append({
            "type": r.type, "name": r.name, "inputs": r.inputs, "secret_paths": sorted(r.secret_paths),
            "dependencies": named(r.dependencies),
            "property_dependencies": {key: named(value.get("urns", []))
                                      for key, value in request.get("propertyDependencies", {}).items()},
            "options": {key: request[key] for key in OPTIONS if key in request},
        })
    resources.sort(key=lambda entry: (entry["type"], entry["name"]))
    return {"stack": stack, "config": overrides, "resources": resources, "outputs": rendered.outputs,
            "secret_outputs": sorted(rendered.secret_outputs)}


def _render(config: dict, stack: str):
    """tests/render.py's render, and each resource's RegisterResourceRequest by URN (its
    options), taken from its recording monitor: a render of an older commit's keeps none."""
    from tests import render as rendering
    requests = {}
    monitor = rendering._RecordingMonitor
    register = monitor.RegisterResource

    def recording(self, request):
        response = register(self, request)
        requests[response.urn] = request
        return response
    monitor.RegisterResource = recording
    try:
        return rendering.render(config, stack=stack, password=PASSWORD), requests
    finally:
        monitor.RegisterResource = register


def dumps(value: dict) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def load(config: str) -> dict:
    return json.loads(path(config).read_text())
