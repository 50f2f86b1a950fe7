"""Least privilege in every pod the program renders: no privileged containers, no
privilege escalation, every capability dropped but the few each role needs (each with a
documented reason), the runtime's seccomp profile, no service-account token, a read-only
image, and nothing from the node."""

import pytest

from pool.security import ROLE_CAPABILITIES
from tests.render import REPO, render
from tests.test_component import DEPLOYMENT

ROLE_OF = {"central-manager": "centralManager", "schedd": "schedd", "worker": "worker"}


def pods(rendered):
    return [(ROLE_OF[d.inputs["metadata"]["labels"]["app.kubernetes.io/component"]],
             d.inputs["spec"]["template"]["spec"]) for d in rendered.of_type(DEPLOYMENT)]


# A non-default stack too: config must not open anything up.
@pytest.fixture(scope="module", params=["dev", "custom"])
def rendered(request):
    return render() if request.param == "dev" else render({
        "workers": "5", "name": "batch", "namespace": "hpc", "scheddStorageClass": "fast"})


def test_pods_get_no_token_and_nothing_from_the_node(rendered):
    assert sorted(role for role, _ in pods(rendered)) == ["centralManager", "schedd", "worker"]
    for _, pod in pods(rendered):
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for key in ("hostNetwork", "hostPID", "hostIPC", "hostUsers", "shareProcessNamespace"):
            assert not pod.get(key), key
        assert not [v for v in pod["volumes"] if "hostPath" in v]


def test_containers_drop_every_capability_but_their_roles(rendered):
    for role, pod in pods(rendered):
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["privileged"] is False
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert set(context["capabilities"]["add"]) == set(ROLE_CAPABILITIES[role])
            assert "SYS_ADMIN" not in context["capabilities"]["add"]
            assert not {"runAsUser", "runAsGroup"} & set(context)  # the image's root, confined


def test_only_the_roles_that_run_other_users_processes_may_signal_them():
    assert "KILL" not in ROLE_CAPABILITIES["centralManager"]
    assert {"KILL", "SETUID", "SETGID"} <= set(ROLE_CAPABILITIES["worker"])


def test_a_read_only_image_still_has_a_writable_tmp(dev):
    for _, pod in pods(dev):
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/tmp"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume == {"name": mount["name"], "emptyDir": {}}


def test_the_readme_gives_the_reason_for_every_capability_kept():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Least privilege"):]
    section = section[:section.index("\n## ")]
    rows = {tuple(cell.strip(" `") for cell in line.strip("|").split("|")[:2])
            for line in section.splitlines() if line.startswith("| `")}
    assert rows == {(role, capability) for role, capabilities in ROLE_CAPABILITIES.items()
                    for capability in capabilities}
