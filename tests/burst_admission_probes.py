"""What whoever holds the autoscaler's Kubernetes identity can do, asked of a real API server
(tests/kube) as that identity (its service account's own token): the burst worker the
autoscaler itself builds is admitted, and every way of taking more through a Job (another
Secret, ConfigMap, image, service account or token, a volume or privilege of the node's) is
refused by the pool's admission policy, each refusal beside the same Job without the
forbidden part, admitted. RBAC refuses the rest (a bare Pod, a CronJob, reading a Secret).

Requests are server-side dry runs: the API server authenticates, authorizes, defaults,
validates and admits them as it would a create, and stores nothing."""

import copy
import json
from dataclasses import dataclass
from pathlib import Path

from tests.kube.kubectl import Kubectl
from tests.pod_programs import load
from tests.podsim.kubelet import wait_until

autoscaler = load("autoscaler")

POOL_LABEL = "htcondor-pool/worker-pool"


def _pod(job: dict) -> dict:
    return job["spec"]["template"]["spec"]


def _container(job: dict) -> dict:
    return _pod(job)["containers"][0]


def _mount(job: dict, volume: dict) -> None:
    _pod(job).setdefault("volumes", []).append({"name": "taken", **volume})
    _container(job).setdefault("volumeMounts", []).append({"name": "taken", "mountPath": "/taken"})


def _secret_env(job: dict, secret: str, container: dict | None = None) -> None:
    (container or _container(job)).setdefault("env", []).append(
        {"name": "TAKEN", "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}})


def _init_container_reading(job: dict, secret: str) -> None:
    init = {key: copy.deepcopy(value) for key, value in _container(job).items()
            if key in ("image", "securityContext", "resources")}
    init.update({"name": "init", "command": ["/bin/sh", "-c", "echo \"$TAKEN\""]})
    _secret_env(job, secret, init)
    _pod(job)["initContainers"] = [init]


def _privileged(job: dict) -> None:
    # The API refuses privileged with allowPrivilegeEscalation false as invalid: ask for both.
    _container(job)["securityContext"].update({"privileged": True, "allowPrivilegeEscalation": True})


def _security(job: dict, **changes) -> None:
    _container(job)["securityContext"].update(changes)


def _capabilities(job: dict, capabilities: dict) -> None:
    _container(job)["securityContext"]["capabilities"] = capabilities


# What each rule of the policy says, in a few words of its message (pool/burst_admission.py).
VOLUMES, ENVIRONMENT, IMAGE = "volumes are the pool's ConfigMap", "environment names no Secret", "image"
ACCOUNT, NODE, PRIVILEGE = "default service account", "nothing of the node", "no privilege beyond"
ONE_WORKER, POOL = "runs one worker", "labelled htcondor-pool/worker-pool"


@dataclass(frozen=True)
class Variant:
    """A burst Job with one thing more than a burst worker has, and the rule that refuses it."""

    name: str
    change: object  # (job, Stack) -> None
    rule: str


# Secrets of every bursting pool: the signing key and each role's token but the workers'.
def _secrets(instance: str) -> dict[str, str]:
    return {"pool password": f"{instance}-pool-password", "schedd's token": f"{instance}-schedd-token",
            "exporter's token": f"{instance}-metrics-token", "autoscaler's own token": f"{instance}-autoscaler-token"}


def variants(instance: str) -> list[Variant]:
    password = f"{instance}-pool-password"
    found = [Variant(f"a volume of the {what}", lambda job, s=secret: _mount(job, {"secret": {"secretName": s}}),
                     VOLUMES) for what, secret in _secrets(instance).items()]
    found += [
        Variant("the pool password through a projected volume",
                lambda job: _mount(job, {"projected": {"sources": [{"secret": {"name": password}}]}}), VOLUMES),
        Variant("a service-account token through a projected volume",
                lambda job: _mount(job, {"projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}),
                VOLUMES),
        Variant("another ConfigMap", lambda job: _mount(job, {"configMap": {"name": "kube-root-ca.crt"}}), VOLUMES),
        Variant("the schedd's queue volume",
                lambda job: _mount(job, {"persistentVolumeClaim": {"claimName": f"{instance}-schedd-spool"}}), VOLUMES),
        Variant("a hostPath volume", lambda job: _mount(job, {"hostPath": {"path": "/"}}), VOLUMES),
        Variant("the pool password as an environment variable", lambda job: _secret_env(job, password), ENVIRONMENT),
        Variant("the pool password through envFrom",
                lambda job: _container(job).update({"envFrom": [{"secretRef": {"name": password}}]}), ENVIRONMENT),
        Variant("an init container reading the pool password",
                lambda job: _init_container_reading(job, password), ENVIRONMENT),
        Variant("another image", lambda job: _container(job).update({"image": "registry.example.org/other:1"}), IMAGE),
        Variant("the autoscaler's service account and its token",
                lambda job: _pod(job).update({"serviceAccountName": f"{instance}-autoscaler",
                                              "automountServiceAccountToken": True}), ACCOUNT),
        Variant("the default service account's token",
                lambda job: _pod(job).update({"automountServiceAccountToken": True}), ACCOUNT),
        Variant("the host's network", lambda job: _pod(job).update({"hostNetwork": True}), NODE),
        Variant("the host's PID namespace", lambda job: _pod(job).update({"hostPID": True}), NODE),
        Variant("a privileged container", _privileged, PRIVILEGE),
        Variant("privilege escalation", lambda job: _security(job, allowPrivilegeEscalation=True), PRIVILEGE),
        Variant("an added capability", lambda job: _capabilities(job, {
            **_container(job)["securityContext"]["capabilities"], "add": ["SYS_ADMIN"]}), PRIVILEGE),
        Variant("the runtime's default capabilities",
                lambda job: _capabilities(job, {"add": _container(job)["securityContext"]["capabilities"].get(
                    "add", [])}), PRIVILEGE),
        Variant("no seccomp filter", lambda job: _security(job, seccompProfile={"type": "Unconfined"}), PRIVILEGE),
        Variant("many workers in one Job", lambda job: job["spec"].update({"parallelism": 10}), ONE_WORKER),
        Variant("a pod of no worker pool that may burst",
                lambda job: job["spec"]["template"]["metadata"]["labels"].update({POOL_LABEL: "elsewhere"}), POOL),
    ]
    return found


@dataclass
class AutoscalerIdentity:
    """The autoscaler's service account of a bursting stack on the real cluster."""

    admin: Kubectl
    namespace: str
    instance: str
    directory: Path

    def __post_init__(self):
        self.kubectl = self.admin.as_service_account(self.namespace, f"{self.instance}-autoscaler", self.directory)
        self.policy = f"{self.instance}-autoscaler.{self.namespace}"

    def burst_job(self, pool: str = "default") -> dict:
        """The Job the autoscaler itself builds for `pool`, from the live Deployment and the
        autoscaler's own view of the pools (its environment), with its own function."""
        deployment = self.admin.json("-n", self.namespace, "get", "deployment", f"{self.instance}-autoscaler")
        env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        shapes, _ = autoscaler.shapes_from(env["HTCONDOR_POOL_BURST_POOLS"])
        (shape,) = [s for s in shapes if s.name == pool]
        worker = self.admin.json("-n", self.namespace, "get", "deployment", shape.deployment)
        return autoscaler.burst_job(worker, shape, self.instance)

    def dry_run(self, manifest: dict):
        """The identity's `kubectl create --dry-run=server` of a manifest."""
        return self.kubectl("create", "--dry-run=server", "-o", "name", "-f", "-",
                            stdin=json.dumps(manifest), check=False)

    def admitted(self, manifest: dict) -> None:
        result = self.dry_run(manifest)
        assert result.returncode == 0, f"refused: {result.stderr}"

    def refused_by_policy(self, manifest: dict, rule: str) -> str:
        result = self.dry_run(manifest)
        assert result.returncode != 0, f"admitted: {result.stdout}"
        said = result.stderr
        assert f"ValidatingAdmissionPolicy '{self.policy}' with binding '{self.policy}' denied request" in said, said
        assert rule in said, said
        return said

    def forbidden_by_rbac(self, result, verb: str, resource: str) -> None:
        assert result.returncode != 0, f"allowed: {result.stdout}"
        user = f"system:serviceaccount:{self.namespace}:{self.instance}-autoscaler"
        assert f'User "{user}" cannot {verb} resource "{resource}"' in result.stderr, result.stderr


def check_every_variant_refused_beside_its_control(identity: AutoscalerIdentity) -> None:
    """For each variant: the autoscaler's own Job admitted, the same with the variant refused
    by the rule that names it."""
    failures = []
    for variant in variants(identity.instance):
        control = identity.burst_job()
        identity.admitted(control)
        job = copy.deepcopy(control)
        variant.change(job)
        try:
            identity.refused_by_policy(job, variant.rule)
        except AssertionError as error:
            failures.append(f"{variant.name}: {error}")
    assert not failures, "\n".join(failures)


def check_rbac_refuses_pods_cronjobs_and_secrets(identity: AutoscalerIdentity) -> None:
    job = identity.burst_job()
    identity.admitted(job)
    # A bare Pod of the same worker, and a CronJob of the same Job: RBAC has no verb for them.
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"generateName": "taken-", "namespace": identity.namespace},
           "spec": job["spec"]["template"]["spec"]}
    identity.forbidden_by_rbac(identity.dry_run(pod), "create", "pods")
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob",
               "metadata": {"name": "taken", "namespace": identity.namespace},
               "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": job["spec"]}}}
    identity.forbidden_by_rbac(identity.dry_run(cronjob), "create", "cronjobs")
    # Reading: what it reads it may (the worker Deployment), a Secret it may not.
    identity.kubectl("-n", identity.namespace, "get", "deployment", f"{identity.instance}-worker")
    secret = identity.kubectl("-n", identity.namespace, "get", "secret", f"{identity.instance}-pool-password",
                              check=False)
    identity.forbidden_by_rbac(secret, "get", "secrets")
    listed = identity.kubectl("-n", identity.namespace, "get", "secrets", check=False)
    identity.forbidden_by_rbac(listed, "list", "secrets")


def check_the_policy_type_checks(identity: AutoscalerIdentity) -> None:
    """The API server found every expression well typed against the Job's schema: a typo in
    a field name would pass as 'absent' in a has() and weaken a rule silently."""
    def checked():  # the API server type-checks a policy shortly after it is written
        policy = identity.admin.json("get", "validatingadmissionpolicy", identity.policy)
        status = policy.get("status", {})
        return status if status.get("observedGeneration") == policy["metadata"]["generation"] else None
    status = wait_until(checked, 60, 1, f"the API server to type-check {identity.policy}")
    assert not status.get("typeChecking", {}).get("expressionWarnings"), status
