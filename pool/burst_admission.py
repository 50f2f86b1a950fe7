"""What the autoscaler's Kubernetes identity may create: burst workers, and nothing else.

The autoscaler's Role lets it create Jobs in the pool's namespace. RBAC cannot say what such
a Job's pod may hold, and whoever may create a workload in a namespace may mount any of its
Secrets through it (Kubernetes' RBAC good practices): the pool password, every token. So a
ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, Kubernetes 1.30 and later),
matched on requests from the autoscaler's service account alone, admits a Job of it only
if its pod is a worker's as the pool renders it:

- one worker per Job, of a worker pool that may burst, running that pool's image;
- volumes only of the pool's ConfigMap, the workers' token Secret and emptyDirs; no
  environment taken from a Secret or ConfigMap;
- no service account but the namespace's default, and no service-account token;
- nothing from the node (host namespaces, hostPort, runtime class, resource claims) and no
  privilege beyond the worker's own: no privileged container, no privilege escalation,
  every capability dropped but the worker's few, the runtime's seccomp profile, no
  SELinux, AppArmor or Windows options, no unmasked /proc, no sysctls; as the condor user
  where the workers run as it.

These hold at the Job itself, in any namespace, whatever Pod Security admission the
namespace enforces. The values (images, names, capabilities) are rendered into the
policy's `variables`, so a `pulumi up` that changes them changes the policy with them;
the rules themselves are fixed text. The policy is cluster-scoped (as every policy is), so
its name carries the namespace: NAME-autoscaler.NAMESPACE.
"""

import json

from .security import container_security_context, runs_as_root

API_VERSION = "admissionregistration.k8s.io/v1"
# What the autoscaler sets on every burst worker's pod template (pool/files/autoscaler.py).
WORKER_POOL_LABEL = "htcondor-pool/worker-pool"


def policy_name(instance: str, namespace: str) -> str:
    """Of the policy and its binding: cluster-scoped, so unique per namespace and pool."""
    return f"{instance}-autoscaler.{namespace}"


def service_account_username(instance: str, namespace: str) -> str:
    """How the API server names the autoscaler's requests (its ServiceAccount's token)."""
    return f"system:serviceaccount:{namespace}:{instance}-autoscaler"


def _cel(value) -> str:
    """A CEL literal of a string, a list of strings or a map of strings (JSON's syntax for
    these is CEL's)."""
    return json.dumps(value, sort_keys=True)


def _all_containers(condition: str) -> str:
    """`condition` of every container `c`, init containers too."""
    return ("(variables.pod.containers.all(c, {0}) && (!has(variables.pod.initContainers) || "
            "variables.pod.initContainers.all(c, {0})))").format(condition)


# (expression, message): each says what a burst worker's Job must be. Every field that may be
# absent is tested with has() before it is read, so that a Job lacking it is refused with the
# message, not with an evaluation error.
_RULES = (
    ("(!has(object.spec.parallelism) || object.spec.parallelism <= 1) && "
     "(!has(object.spec.completions) || object.spec.completions <= 1)",
     "a burst worker's Job runs one worker: parallelism and completions at most 1"),
    ("variables.pool in variables.images",
     f"a burst worker's pod is labelled {WORKER_POOL_LABEL} with a worker pool of this pool that may burst"),
    ("!(variables.pool in variables.images) || "
     + _all_containers("c.image == variables.images[variables.pool]"),
     "a burst worker runs its worker pool's image, as the pool's Deployment has it, in every container"),
    ("!has(variables.pod.volumes) || variables.pod.volumes.all(v, has(v.emptyDir) || "
     "(has(v.configMap) && v.configMap.name == variables.configMap) || "
     "(has(v.secret) && v.secret.secretName == variables.tokenSecret))",
     "a burst worker's volumes are the pool's ConfigMap, the workers' token Secret and emptyDirs, nothing else "
     "(no other Secret or ConfigMap, no projected, hostPath or persistent volume)"),
    (_all_containers("!has(c.envFrom) && (!has(c.env) || c.env.all(e, !has(e.valueFrom) || "
                     "has(e.valueFrom.fieldRef) || has(e.valueFrom.resourceFieldRef)))"),
     "a burst worker's environment names no Secret or ConfigMap (no envFrom, secretKeyRef or configMapKeyRef)"),
    ("(!has(variables.pod.serviceAccountName) || variables.pod.serviceAccountName == 'default') && "
     "(!has(variables.pod.serviceAccount) || variables.pod.serviceAccount == 'default') && "
     "has(variables.pod.automountServiceAccountToken) && !variables.pod.automountServiceAccountToken",
     "a burst worker runs as the namespace's default service account with automountServiceAccountToken false"),
    ("!(has(variables.pod.hostNetwork) && variables.pod.hostNetwork) && "
     "!(has(variables.pod.hostPID) && variables.pod.hostPID) && "
     "!(has(variables.pod.hostIPC) && variables.pod.hostIPC) && "
     "!has(variables.pod.runtimeClassName) && !has(variables.pod.resourceClaims) && "
     + _all_containers("!has(c.ports) || c.ports.all(p, !has(p.hostPort) || p.hostPort == 0)"),
     "a burst worker takes nothing of the node: no host network, PID or IPC namespace, hostPort, "
     "runtime class or resource claim"),
    ("has(variables.pod.securityContext) && has(variables.pod.securityContext.seccompProfile) && "
     "variables.pod.securityContext.seccompProfile.type == 'RuntimeDefault' && "
     "!has(variables.pod.securityContext.seLinuxOptions) && !has(variables.pod.securityContext.sysctls) && "
     "!has(variables.pod.securityContext.windowsOptions) && "
     "(!has(variables.pod.securityContext.appArmorProfile) || "
     "variables.pod.securityContext.appArmorProfile.type == 'RuntimeDefault') && "
     + _all_containers(
         "has(c.securityContext) && !(has(c.securityContext.privileged) && c.securityContext.privileged) && "
         "has(c.securityContext.allowPrivilegeEscalation) && !c.securityContext.allowPrivilegeEscalation && "
         "has(c.securityContext.capabilities) && has(c.securityContext.capabilities.drop) && "
         "'ALL' in c.securityContext.capabilities.drop && (!has(c.securityContext.capabilities.add) || "
         "c.securityContext.capabilities.add.all(a, a in variables.capabilities)) && "
         "(!has(c.securityContext.procMount) || c.securityContext.procMount == 'Default') && "
         "(!has(c.securityContext.seccompProfile) || c.securityContext.seccompProfile.type == 'RuntimeDefault') && "
         "!has(c.securityContext.seLinuxOptions) && !has(c.securityContext.windowsOptions) && "
         "(!has(c.securityContext.appArmorProfile) || c.securityContext.appArmorProfile.type == 'RuntimeDefault')"),
     "a burst worker has no privilege beyond the worker's own: not privileged, no privilege escalation, every "
     "capability dropped but the worker's, the runtime's seccomp profile, no SELinux, AppArmor or Windows "
     "options, no unmasked /proc, no sysctls"),
    ("variables.runsAsRoot || (has(variables.pod.securityContext) && "
     "has(variables.pod.securityContext.runAsNonRoot) && variables.pod.securityContext.runAsNonRoot && "
     "(!has(variables.pod.securityContext.runAsUser) || variables.pod.securityContext.runAsUser != 0) && "
     + _all_containers("!has(c.securityContext) || ((!has(c.securityContext.runAsNonRoot) || "
                       "c.securityContext.runAsNonRoot) && "
                       "(!has(c.securityContext.runAsUser) || c.securityContext.runAsUser != 0))") + ")",
     "a burst worker of unprivileged workers runs as a user other than root (runAsNonRoot)"),
)


def policy(instance: str, namespace: str, images: dict[str, str], config_map: str, token_secret: str,
           unprivileged_workers: bool, labels: dict) -> dict:
    """The ValidatingAdmissionPolicy. `images`: the image of each worker pool that may burst,
    by its name (the slots' WorkerPool, the pod's WORKER_POOL_LABEL); `config_map` and
    `token_secret`: the names of the pool's ConfigMap and the workers' token Secret."""
    capabilities = container_security_context("worker", unprivileged_workers)["capabilities"].get("add", [])
    pod_labels = "object.spec.template.metadata.labels"
    return {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": policy_name(instance, namespace), "labels": labels},
        "spec": {
            # A rule that cannot be evaluated refuses the Job, as a false one does.
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["batch"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                "resources": ["jobs"]}]},
            # Only the autoscaler's requests: the pool's admins create what Jobs they like.
            "matchConditions": [{
                "name": "the-autoscaler",
                "expression": f"request.userInfo.username == {_cel(service_account_username(instance, namespace))}"}],
            "variables": [
                {"name": "pod", "expression": "object.spec.template.spec"},
                {"name": "pool", "expression": f"has(object.spec.template.metadata) && has({pod_labels}) && "
                                               f"{_cel(WORKER_POOL_LABEL)} in {pod_labels} ? "
                                               f"{pod_labels}[{_cel(WORKER_POOL_LABEL)}] : ''"},
                # What the pool renders, as values: the rules above read only these.
                {"name": "images", "expression": _cel(images)},
                {"name": "configMap", "expression": _cel(config_map)},
                {"name": "tokenSecret", "expression": _cel(token_secret)},
                {"name": "capabilities", "expression": _cel(sorted(capabilities))},
                {"name": "runsAsRoot", "expression": _cel(runs_as_root("worker", unprivileged_workers))},
            ],
            "validations": [{"expression": expression, "message": message} for expression, message in _RULES],
        },
    }


def binding(instance: str, namespace: str, policy_ref, labels: dict) -> dict:
    """The policy's binding: enforced (Deny) wherever it matches."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy_name(instance, namespace), "labels": labels},
        "spec": {"policyName": policy_ref, "validationActions": ["Deny"]},
    }
