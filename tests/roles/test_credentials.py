"""pool/roles/credentials.py alone: the pool password and its Secret, each role's token in
a Secret of its own, and what each role's pods mount."""

import base64

import pulumi

from pool import idtokens
from pool.credentials import SCHEDD_KEY_ID, TOKEN_HOLDERS, schedd_key
from pool.password import unscramble
from pool.roles import Credentials, CredentialsArgs
from tests.roles import HOST, INSTANCE, NAMESPACE, build, objects

TYPE = "htcondor:index:Credentials"
SECRET = "kubernetes:core/v1:Secret"


def credentials(**args) -> Credentials:
    made = Credentials(f"{INSTANCE}-credentials", CredentialsArgs(INSTANCE, NAMESPACE, HOST, "1", **args))
    pulumi.export("submit_token", made.submit_token)
    pulumi.export("signing_key", made.signing_key)
    pulumi.export("mounted", {role: c.secret.metadata.name for role, c in made.credentials.items()})
    return made


def data(rendered, name: str) -> dict:
    return {key: base64.b64decode(value) for key, value in objects(rendered, TYPE)[("Secret", name)]
            .inputs["data"].items()}


def test_it_holds_the_password_its_secret_and_a_token_secret_per_role():
    rendered = build(credentials)
    assert set(objects(rendered, TYPE)) == {
        ("random:index/randomPassword:RandomPassword", "t-pool-password"), ("Secret", "t-pool-password"),
        ("Secret", "t-schedd-token"), ("Secret", "t-worker-token")}
    (password,) = rendered.of_type("random:index/randomPassword:RandomPassword")
    assert password.inputs["keepers"] == {"passwordVersion": "1"} and password.inputs["length"] == 40
    assert unscramble(data(rendered, "t-pool-password")["POOL"]) == "test-password"
    # The central manager mounts the key; every other role its token.
    assert rendered.outputs["mounted"] == {"centralManager": "t-pool-password", "schedd": "t-schedd-token",
                                           "worker": "t-worker-token"}
    assert {"submit_token", "signing_key"} <= rendered.secret_outputs


def test_each_token_is_its_roles_signed_with_the_key_for_this_trust_domain():
    rendered = build(credentials)
    for role, holder in TOKEN_HOLDERS.items():
        token = data(rendered, f"t-{role}-token")["token"].decode()
        claims = idtokens.verify(token, "test-password")
        assert (claims["sub"], claims["iss"]) == (holder.subject(HOST), HOST)
    assert data(rendered, "t-schedd-token")["token"].decode() == rendered.outputs["submit_token"]


def test_with_burst_workers_only_the_schedd_holds_a_key_of_its_own():
    rendered = build(lambda: credentials(schedd_verifies_autoscaler=True))
    assert unscramble(data(rendered, "t-schedd-token")[SCHEDD_KEY_ID]) == schedd_key("test-password")
    assert set(data(rendered, "t-worker-token")) == {"token"}
    assert SCHEDD_KEY_ID not in data(build(credentials), "t-schedd-token")


def test_built_alone_its_objects_are_its_own_and_name_no_former_parent():
    rendered = build(credentials)
    assert not [alias for r in objects(rendered, TYPE).values() for alias in r.aliases
                if alias["spec"].get("parentUrn")]
