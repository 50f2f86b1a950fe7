"""Each role's component built alone under Pulumi mocks, from its typed arguments, as a
library user or another component would: one test module per module of pool/roles/
(tests/roles/test_metrics.py tests pool/roles/metrics.py). What the whole program
registers is tests/test_*.py's (tests/render.py).

The inputs a role takes of others (the pool's ConfigMap, a role's credential, a Deployment
to wait for) are made here, plainly, as resources of the test's stack."""

import pulumi
import pulumi_kubernetes as k8s

from pool import HTCondorPoolArgs
from pool.component import config_files
from pool.roles import Credential, PoolConfig, central_manager
from pool.roles.shared import config_map, credential_secret_name
from tests.render import Rendered, Resource, render_program

INSTANCE, NAMESPACE = "t", "batch"
HOST = central_manager.host(INSTANCE, NAMESPACE)  # the pool's TRUST_DOMAIN
CHECKSUM = "0" * 64


def pool_config(args: HTCondorPoolArgs | None = None) -> PoolConfig:
    """The pool's ConfigMap, with the files the pool of `args` would have."""
    files = config_files(args or HTCondorPoolArgs(), HOST)
    return PoolConfig(k8s.core.v1.ConfigMap(f"{INSTANCE}-config", **config_map(INSTANCE, NAMESPACE, files)), files)


def credential(role: str) -> Credential:
    """A role's credential: its Secret (empty here) and a fixed checksum."""
    name = credential_secret_name(INSTANCE, role)
    return Credential(k8s.core.v1.Secret(name, metadata={"name": name, "namespace": NAMESPACE}), CHECKSUM)


def waited_for(name: str) -> pulumi.Resource:
    """A resource a role's objects are to wait for (a Deployment, a policy)."""
    return k8s.core.v1.ConfigMap(f"{name}-waited-for", metadata={"name": name, "namespace": NAMESPACE})


def build(program, **config: str) -> Rendered:
    """What `program` (which builds one role's component) registers, and exports."""
    return render_program(program, {f"htcondor-pool:{k}": v for k, v in config.items()}, password="test-password")


def component(rendered: Rendered, type_: str) -> Resource:
    (found,) = rendered.of_type(type_)
    return found


def objects(rendered: Rendered, type_: str) -> dict[tuple[str, str], Resource]:
    """The objects right under the component of `type_`, by (kind, name)."""
    parent = component(rendered, type_)
    return {(r.kind, r.name): r for r in rendered.resources if r.parent == parent.urn}


def urn(rendered: Rendered, kind: str, name: str) -> str:
    (found,) = [r for r in rendered.resources if r.kind == kind and r.name == name]
    return found.urn
