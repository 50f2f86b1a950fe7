"""What every role's objects share: names, labels and selectors (pure functions of the
pool's name, `instance`, so that two pools can share a namespace and a role can name
another's objects without holding them); the pod-template annotations that roll a role's
pods when what they mount changes; what a pod mounts of the pool (PoolConfig, Credential);
and Role, the base of every role's component."""

import base64
import hashlib
import re
from dataclasses import dataclass
from importlib import resources as package_files

import pulumi
import pulumi_kubernetes as k8s

from ..credentials import SIGNING_KEY_ROLES
from ..worker_pools import DEFAULT_POOL

# Kubernetes component names (labels, object-name suffixes) of the config roles.
COMPONENTS = {"centralManager": "central-manager", "schedd": "schedd", "worker": "worker"}
# The label naming a named worker pool's pods (the default pool's pods have none, as before
# worker pools existed, so that their Deployment's template and selector stay as they were).
WORKER_POOL_LABEL = "htcondor-pool/worker-pool"
CHECKSUM_CONFIG = "htcondor-pool/config-checksum"
# Of the role's credential (the signing key, or the role's token): a new one rolls the pods.
CHECKSUM_CREDENTIAL = "htcondor-pool/credential-checksum"
# The package's namespace of type tokens: the pool is `htcondor:index:Pool`, each role's
# component `htcondor:index:<Kind>`.
TYPE_PREFIX = "htcondor:index:"


def component(role: str, pool: str = DEFAULT_POOL) -> str:
    """The component label: a named worker pool's is its own, so that no Deployment's
    selector takes another's pods."""
    return COMPONENTS[role] if pool == DEFAULT_POOL else f"{COMPONENTS[role]}-{pool}"


def labels(instance: str, role: str | None = None, pool: str = DEFAULT_POOL) -> dict:
    """Kubernetes' recommended labels."""
    result = {
        "app.kubernetes.io/name": "htcondor",
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/part-of": "htcondor-pool",
        "app.kubernetes.io/managed-by": "pulumi",
    }
    if role:
        result["app.kubernetes.io/component"] = component(role, pool)
    if pool != DEFAULT_POOL:
        result[WORKER_POOL_LABEL] = pool
    return result


def selector(instance: str, role: str, pool: str = DEFAULT_POOL) -> dict:
    keys = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")
    return {k: v for k, v in labels(instance, role, pool).items() if k in keys}


def pool_selector(instance: str) -> dict:
    """Every pod of this pool, whatever its role."""
    keys = ("app.kubernetes.io/name", "app.kubernetes.io/instance")
    return {k: v for k, v in labels(instance).items() if k in keys}


def client_labels(instance: str, client_component: str) -> dict:
    """The labels of a program of the pool that is no HTCondor role (the exporter, the
    autoscaler): the pool's, with its own component."""
    return {**labels(instance), "app.kubernetes.io/component": client_component}


def client_selector(instance: str, client_component: str) -> dict:
    return {**pool_selector(instance), "app.kubernetes.io/component": client_component}


def object_name(instance: str, role: str) -> str:
    return f"{instance}-{COMPONENTS[role]}"


def config_map_name(instance: str) -> str:
    return f"{instance}-config"


def token_secret_name(instance: str, role: str) -> str:
    return f"{object_name(instance, role)}-token"


def credential_secret_name(instance: str, role: str) -> str:
    """The Secret a role's pods mount: the signing key's, or the role's token's."""
    return f"{instance}-pool-password" if role in SIGNING_KEY_ROLES else token_secret_name(instance, role)


@dataclass(frozen=True)
class PoolConfig:
    """The pool's ConfigMap and the files in it. Each pod mounts some of them, and its
    template carries their checksum: a change rolls exactly the pods that read it."""

    config_map: k8s.core.v1.ConfigMap
    files: dict[str, str]

    def checksum(self, keys: list[str]) -> str:
        return sha256("".join(self.files[key] for key in keys))


@dataclass(frozen=True)
class Credential:
    """The Secret a role's pods mount, and a checksum of what is in it (a plain value: a
    hash of a 240-bit random key, or of a token signed with it, reveals nothing, and keeps
    the Deployment's spec readable in previews)."""

    secret: k8s.core.v1.Secret
    checksum: pulumi.Input[str]


class Role(pulumi.ComponentResource):
    """A role's component: `htcondor:index:<kind>`, the parent of the role's objects.

    Until the component tree (issue 30) every object was the HTCondorPool's own child. So
    each object also names, as an alias, the component's own parent: in a stack created
    before, Pulumi finds the object under its old URN and moves it here, unchanged."""

    def __init__(self, kind: str, name: str, opts: pulumi.ResourceOptions | None):
        super().__init__(f"{TYPE_PREFIX}{kind}", name, None, opts)
        self._former_parent = opts.parent if opts is not None else None

    def object_options(self, depends_on: list | None = None) -> pulumi.ResourceOptions:
        """The options of one of the role's objects: this component its parent."""
        aliases = [pulumi.Alias(parent=self._former_parent)] if self._former_parent is not None else None
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on, aliases=aliases)


def arguments(manifest: dict) -> dict:
    """A manifest's top-level fields as a pulumi-kubernetes resource takes them (snake_case:
    `roleRef` is `role_ref`); what is inside them stays camelCase, as the API has it."""
    return {re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower(): value for key, value in manifest.items()}


def base64_text(token: pulumi.Output[str]) -> pulumi.Output[str]:
    """A token as a Secret's `data` holds it (still secret: apply keeps secretness)."""
    return token.apply(lambda t: base64.b64encode(t.encode()).decode())


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def package_file(path: str) -> str:
    """A file shipped in the package: a pod's program (files/), the dashboard (grafana/)."""
    return package_files.files(__package__.rpartition(".")[0]).joinpath(path).read_text()


def pod_script(name: str) -> str:
    """One of the programs pods run (pool/files), shipped in the ConfigMap."""
    return package_file(f"files/{name}")


# ---- the pool's own objects, every role's: its namespace and its configuration ------------
# The Pod Security Standard the pool's namespace warns and audits at: the strongest.
POD_SECURITY_GOAL = "restricted"


def namespace(name: str, instance: str, enforce: str) -> dict:
    """The pool's namespace, where Pod Security Admission enforces `enforce` (the strongest
    standard every pod of the pool meets) and warns and audits at `restricted`."""
    admission = {f"pod-security.kubernetes.io/{mode}": level
                 for mode, level in (("enforce", enforce), ("warn", POD_SECURITY_GOAL), ("audit", POD_SECURITY_GOAL))}
    return {"metadata": {"name": name, "labels": {**labels(instance), **admission}}}


def config_map(instance: str, namespace_name, files: dict[str, str]) -> dict:
    return {
        "metadata": {"name": config_map_name(instance), "namespace": namespace_name,
                     "labels": labels(instance)},
        "data": dict(files),
    }
