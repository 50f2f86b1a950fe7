"""Per-role credentials on the rendered objects: the signing key reaches only the central
manager; the schedd and the workers each get an IDTOKEN minted from it, limited to what
their role does, the same on every run, and secret everywhere but in its Secret."""

import base64
import json

import jwt
import pytest

from pool import idtokens
from pool.roles import pods, shared
from pool.condor_config import CREDENTIAL_DIR, CREDENTIAL_SOURCE_DIR
from pool.credentials import TOKEN_HOLDERS
from tests.render import render

HOST = "htcondor-central-manager.htcondor.svc.cluster.local"
SECRET = "kubernetes:core/v1:Secret"


def secrets(rendered) -> dict[str, dict]:
    return {r.name: r.inputs for r in rendered.of_type(SECRET)}


def token_of(rendered, role: str) -> str:
    data = secrets(rendered)[shared.token_secret_name("htcondor", role)]["data"]
    return base64.b64decode(data["token"]).decode()


def pod_spec(rendered, role):
    (deployment,) = [r for r in rendered.of_type("kubernetes:apps/v1:Deployment")
                     if r.inputs["metadata"]["name"] == shared.object_name("htcondor", role)]
    return deployment.inputs["spec"]["template"]["spec"]


@pytest.mark.parametrize("role,mounted,file", [
    ("centralManager", "htcondor-pool-password", "POOL"),
    ("schedd", "htcondor-schedd-token", "token"),
    ("worker", "htcondor-worker-token", "token"),
])
def test_each_role_mounts_its_own_credential_and_no_other(dev, role, mounted, file):
    spec = pod_spec(dev, role)
    assert [v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v] == [mounted]
    (secret,) = [s for s in dev.of_type(SECRET) if s.name == mounted]
    assert list(secret.inputs["data"]) == [file]
    (container,) = spec["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["credential-source"] == {"name": "credential-source", "mountPath": CREDENTIAL_SOURCE_DIR,
                                           "readOnly": True}
    # The entrypoint's private copy lives in memory, never on the node's disk.
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["credential"]["emptyDir"]["medium"] == "Memory"
    assert mounts["credential"]["mountPath"] == CREDENTIAL_DIR
    assert pods.credential_file(role) == f"{CREDENTIAL_DIR}/{file}"


@pytest.mark.parametrize("role,subject,scopes", [
    ("schedd", f"submit@{HOST}", ["READ", "ADVERTISE_MASTER", "ADVERTISE_SCHEDD"]),
    ("worker", f"worker@{HOST}", ["READ", "ADVERTISE_MASTER", "ADVERTISE_STARTD"]),
])
def test_each_token_proves_its_role_and_is_limited_to_what_the_role_does(dev, role, subject, scopes):
    token = token_of(dev, role)
    assert jwt.get_unverified_header(token)["kid"] == "POOL"
    claims = idtokens.verify(token, dev.password)  # signed with the pool's key
    assert claims["sub"] == subject
    assert claims["iss"] == HOST  # the pool's TRUST_DOMAIN: clients send only matching tokens
    assert claims["scope"].split() == [f"condor:/{s}" for s in scopes]
    assert claims["jti"] and "exp" not in claims


def test_a_token_does_not_verify_under_another_pools_key(dev):
    with pytest.raises(jwt.InvalidSignatureError):
        idtokens.verify(token_of(dev, "worker"), "another-pools-password")


def test_the_same_key_mints_the_same_tokens_and_a_new_key_new_ones():
    one, again = render(password="the-same-key"), render(password="the-same-key")
    rotated = render({"passwordVersion": "2"}, password="a-new-key")
    for role in TOKEN_HOLDERS:
        assert token_of(one, role) == token_of(again, role)  # no diff, no rollout
        assert token_of(one, role) != token_of(rotated, role)


def test_tokens_are_secret_everywhere_but_in_their_secrets_and_secret_outputs(dev):
    for role, output in (("schedd", "submit_token"), ("worker", "worker_token")):
        token = token_of(dev, role)
        holders = [r.name for r in dev.resources if token in json.dumps(r.inputs)
                   or base64.b64encode(token.encode()).decode() in json.dumps(r.inputs)]
        assert holders == [shared.token_secret_name("htcondor", role)]
        (secret,) = [r for r in dev.of_type(SECRET) if r.name == holders[0]]
        assert "/data" in secret.secret_paths
        assert dev.outputs[output] == token and output in dev.secret_outputs
