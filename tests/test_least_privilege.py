"""Least privilege in every pod the program renders: no privileged containers, no
privilege escalation, the central manager, the metrics exporter, the autoscaler (and, if
asked, the workers) as the condor user with no capability, every capability dropped but the
few each root role needs (each with a documented reason), the runtime's seccomp profile, no
service-account token but the autoscaler's own, a read-only image, nothing from the node,
and the Pod Security Standard each pod meets enforced on the namespace."""

import pytest

from pool.security import CONDOR_ID, pod_security_level, pod_security_violations
from tests.render import REPO, render
from tests.test_component import DEPLOYMENT

ROLE_OF = {"central-manager": "centralManager", "schedd": "schedd", "worker": "worker", "metrics": "metrics",
           "autoscaler": "autoscaler"}
# The capabilities each role may keep, as docs/security.md's "Least privilege" table states them. An
# independent list, not pool/security.py's table: a capability added there fails every
# least-privilege test (here, in the emulator and on the real cluster) until it is here too.
README_CAPABILITIES = {
    "centralManager": set(),
    "metrics": set(),
    "autoscaler": set(),
    "schedd": {"DAC_OVERRIDE", "CHOWN", "SETUID", "SETGID", "KILL"},
    "worker": {"DAC_OVERRIDE", "CHOWN", "SETUID", "SETGID", "KILL"},
}


def pods(rendered):
    return [(ROLE_OF[d.inputs["metadata"]["labels"]["app.kubernetes.io/component"]],
             d.inputs["spec"]["template"]["spec"]) for d in rendered.of_type(DEPLOYMENT)]


# A non-default stack too: config must not open anything up. It bursts (maxWorkers above
# workers) and exports metrics, so the autoscaler's and the exporter's pods are held to the
# same rules as HTCondor's.
CUSTOM = {"workers": "5", "maxWorkers": "8", "metrics": "true", "name": "batch", "namespace": "hpc",
          "scheddStorageClass": "fast"}
# Pods that never act as another user: as the condor user, no capability, Pod Security
# `restricted`.
AS_CONDOR_ROLES = ("centralManager", "metrics", "autoscaler")
# Each stack config, and the roles whose pods it renders.
CASES = {"dev": ({}, ["centralManager", "metrics", "schedd", "worker"]),
         "custom": (CUSTOM, ["autoscaler", "centralManager", "metrics", "schedd", "worker"])}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    config, roles = CASES[request.param]
    return render(config), roles


@pytest.fixture(scope="module")
def rendered(case):
    return case[0]


def test_every_role_the_stack_asks_for_has_its_pod(case):
    """So the rules below are checked on each of them."""
    rendered, roles = case
    assert sorted(role for role, _ in pods(rendered)) == roles


def test_pods_get_no_token_and_nothing_from_the_node(rendered):
    for role, pod in pods(rendered):
        # The autoscaler talks to the Kubernetes API: its pod alone mounts a token, its own
        # service account's (docs/security.md, "Burst workers").
        if role == "autoscaler":
            assert pod["automountServiceAccountToken"] is True
            assert pod["serviceAccountName"] == "batch-autoscaler"
        else:
            assert pod["automountServiceAccountToken"] is False, role
            assert "serviceAccountName" not in pod, role
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for key in ("hostNetwork", "hostPID", "hostIPC", "hostUsers", "shareProcessNamespace"):
            assert not pod.get(key), key
        assert not [v for v in pod["volumes"] if "hostPath" in v]


AS_CONDOR = {"runAsNonRoot": True, "runAsUser": CONDOR_ID, "runAsGroup": CONDOR_ID, "fsGroup": CONDOR_ID}


def test_containers_drop_every_capability_but_their_roles(rendered):
    for role, pod in pods(rendered):
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["privileged"] is False
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert set(context["capabilities"].get("add", [])) == README_CAPABILITIES[role]
            assert not {"runAsUser", "runAsGroup"} & set(context)  # set once, on the pod


def test_the_central_manager_the_exporter_and_the_autoscaler_run_as_condor_with_no_capability_and_meet_restricted(
        rendered):
    """None of them ever acts as another user."""
    for role, pod in pods(rendered):
        if role in AS_CONDOR_ROLES:
            assert AS_CONDOR.items() <= pod["securityContext"].items(), role
            assert "add" not in pod["containers"][0]["securityContext"]["capabilities"], role
            assert pod_security_level(pod) == "restricted", role


@pytest.mark.parametrize("role", ["schedd", "worker"])
def test_the_roles_that_run_other_users_jobs_start_as_root_and_meet_baseline(dev, role):
    pod = dict(pods(dev))[role]
    assert "runAsUser" not in pod["securityContext"]
    assert pod_security_level(pod) == "baseline"
    assert "container htcondor may run as root (runAsNonRoot is not true)" in pod_security_violations(pod, "restricted")


def test_unprivileged_workers_run_as_condor_with_no_capability_and_meet_restricted():
    rendered = render({"unprivilegedWorkers": "true"})
    worker = dict(pods(rendered))["worker"]
    assert AS_CONDOR.items() <= worker["securityContext"].items()
    assert "add" not in worker["containers"][0]["securityContext"]["capabilities"]
    assert pod_security_level(worker) == "restricted"
    assert pod_security_level(dict(pods(rendered))["schedd"]) == "baseline"  # unchanged


def namespace_labels(rendered) -> dict:
    (namespace,) = rendered.of_type("kubernetes:core/v1:Namespace")
    return {k.rsplit("/", 1)[1]: v for k, v in namespace.inputs["metadata"]["labels"].items()
            if k.startswith("pod-security.kubernetes.io/")}


@pytest.mark.parametrize("config", [{}, {"unprivilegedWorkers": "true"}, CUSTOM])
def test_the_namespace_enforces_what_every_pod_meets_and_warns_at_restricted(config):
    # The schedd runs jobs as their owners: the namespace can enforce no more than baseline.
    assert namespace_labels(render(config)) == {"enforce": "baseline", "warn": "restricted", "audit": "restricted"}


def test_the_standards_check_can_fail():
    pod = dict(pods(render()))["centralManager"]
    privileged = {**pod, "hostNetwork": True}
    assert pod_security_level(privileged) == "privileged"
    extra = {**pod, "containers": [{**pod["containers"][0], "securityContext": {
        **pod["containers"][0]["securityContext"], "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}}]}
    assert pod_security_level(extra) == "privileged"


def test_a_read_only_image_still_has_a_writable_tmp_within_the_pods_disk(rendered):
    for _, pod in pods(rendered):
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/tmp"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        disk = pod["containers"][0]["resources"]["limits"]["ephemeral-storage"]
        assert volume == {"name": mount["name"], "emptyDir": {"sizeLimit": disk}}


def test_the_docs_give_the_reason_for_every_capability_kept():
    docs = (REPO / "docs" / "security.md").read_text()
    section = docs[docs.index("## Least privilege"):].split("\n## ", 1)[0]
    rows = {tuple(cell.strip(" `") for cell in line.strip("|").split("|")[:2])
            for line in section.splitlines() if line.startswith("| `")}
    assert rows == {(role, capability) for role, capabilities in README_CAPABILITIES.items()
                    for capability in capabilities}


def test_the_exporter_holds_a_token_of_read_scope_only_and_not_the_signing_key(dev):
    from pool.idtokens import claims
    pod = dict(pods(dev))["metrics"]
    (source,) = [v for v in pod["volumes"] if "secret" in v]
    (secret,) = [r.inputs for r in dev.of_type("kubernetes:core/v1:Secret")
                 if r.inputs["metadata"]["name"] == source["secret"]["secretName"]]
    (token,) = secret["data"].values()
    import base64
    assert claims(base64.b64decode(token).decode())["scope"] == "condor:/READ"
    assert secret["metadata"]["name"] == "htcondor-metrics-token"
