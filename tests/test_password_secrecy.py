"""The pool password, in plaintext, is only in the Secret's file and the secret output."""

PASSWORD_SECRET = "htcondor-pool-password"

import base64
import json

from pool.password import scramble
from tests.render import render


def test_plaintext_password_is_in_no_resource_input(dev):
    for resource in dev.resources:
        assert dev.password not in json.dumps(resource.raw_inputs), resource.name


def test_the_secret_holds_the_password_file_and_pulumi_treats_it_as_secret(dev):
    (secret,) = [s for s in dev.of_type("kubernetes:core/v1:Secret") if s.name == PASSWORD_SECRET]
    assert base64.b64decode(secret.inputs["data"]["POOL"]) == scramble(dev.password)
    assert "/data" in secret.secret_paths


def test_only_the_secret_carries_the_password_file(dev):
    encoded = base64.b64encode(scramble(dev.password)).decode()
    holders = [r.name for r in dev.resources if encoded in json.dumps(r.raw_inputs)]
    assert holders == [PASSWORD_SECRET]
    # Only Secrets carry anything secret (this one, and the tokens signed with the key).
    assert {r.kind for r in dev.resources if r.secret_paths} == {"Secret"}


def test_password_is_exported_only_as_a_secret(dev):
    exported = [name for name, value in dev.outputs.items() if dev.password in json.dumps(value)]
    assert exported == ["pool_password"]
    assert "pool_password" in dev.secret_outputs


def test_the_password_is_a_long_random_one_the_provider_makes_per_stack():
    # Its randomness is the random provider's (the real CLI's tests read it back from the
    # stack); the program asks for a long one and keeps it until passwordVersion changes.
    (password,) = render().of_type("random:index/randomPassword:RandomPassword")
    assert password.inputs["length"] >= 32 and password.inputs["special"] is False
    assert password.inputs["keepers"] == {"passwordVersion": "1"}
    assert render().password == render().password  # one stack: kept
    assert render({"passwordVersion": "2"}).password != render().password  # a new keeper: replaced
