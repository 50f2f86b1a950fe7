"""Credentials: the pool password, the pool's signing key, in the Secret NAME-pool-password
(the central manager's pods mount it), and the IDTOKEN of each role that presents one (the
schedd's, the workers'), minted from the key, each in a Secret NAME-ROLE-token. Who holds
which credential, and what it may do, is pool/credentials.py's.

Others take from it the key (the exporter and the autoscaler mint their own tokens from
it), the tokens (stack outputs, for outside hosts) and, per role, what its pods mount: the
Secret and a checksum of it, which rolls the role's pods when the credential changes."""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from .. import idtokens
from ..condor_config import KEY_FILE_NAME, TOKEN_FILE_NAME
from ..credentials import SCHEDD_KEY_ID, SIGNING_KEY_ROLES, TOKEN_HOLDERS, schedd_key
from ..password import password_file_base64
from .shared import Credential, Role, base64_text, credential_secret_name, labels, sha256, token_secret_name

PASSWORD_LENGTH = 40
PASSWORD_KEY = KEY_FILE_NAME


def password_secret(instance: str, namespace_name, password_file_b64) -> dict:
    return {
        "metadata": {"name": credential_secret_name(instance, "centralManager"), "namespace": namespace_name,
                     "labels": labels(instance)},
        "type": "Opaque",
        "data": {PASSWORD_KEY: password_file_b64},
    }


def token_secret(instance: str, role: str, namespace_name, token_b64, keys_b64: dict | None = None) -> dict:
    """A role's IDTOKEN, as the one token of HTCondor's token directory; and the keys, by
    key id, it verifies other tokens with (the schedd's SCHEDD key, with burst workers)."""
    return {
        "metadata": {"name": token_secret_name(instance, role), "namespace": namespace_name,
                     "labels": labels(instance, role)},
        "type": "Opaque",
        "data": {TOKEN_FILE_NAME: token_b64, **(keys_b64 or {})},
    }


@dataclass(frozen=True)
class CredentialsArgs:
    instance: str  # the pool's name: objects are NAME-pool-password, NAME-ROLE-token
    namespace: pulumi.Input[str]
    # The pool's TRUST_DOMAIN (the central manager's host name): the tokens' issuer.
    trust_domain: str
    # A keeper of the RandomPassword: a new one draws a new password, hence new tokens.
    password_version: str
    # With burst workers the schedd verifies the autoscaler's token with a key of its own,
    # derived from the pool's (pool/credentials.py: SCHEDD_KEY_ID), held in its Secret.
    schedd_verifies_autoscaler: bool = False


class Credentials(Role):
    """The pool password, its Secret, and each token-holding role's token in a Secret."""

    signing_key: pulumi.Output[str]  # the pool password (secret)
    submit_token: pulumi.Output[str]  # the schedd's IDTOKEN (secret)
    worker_token: pulumi.Output[str]  # the workers' IDTOKEN (secret)
    # What each role's pods mount (centralManager: the key's Secret; schedd, worker: their token's).
    credentials: dict[str, Credential]

    def __init__(self, name: str, args: CredentialsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("Credentials", name, opts)
        instance, namespace, trust_domain = args.instance, args.namespace, args.trust_domain
        # A new passwordVersion replaces the RandomPassword, hence the Secret and, through
        # the password checksum, every pod.
        password = random.RandomPassword(f"{instance}-pool-password", length=PASSWORD_LENGTH,
                                         special=False, keepers={"passwordVersion": args.password_version},
                                         opts=self.object_options())
        secret = k8s.core.v1.Secret(f"{instance}-pool-password", opts=self.object_options(), **password_secret(
            instance, namespace, pulumi.Output.secret(password.result.apply(password_file_base64))))

        # Each token-holding role's IDTOKEN, minted from the key: the same key always gives
        # the same token, a new one (passwordVersion) a new token.
        tokens = {role: pulumi.Output.secret(password.result.apply(
                      lambda key, holder=holder: idtokens.mint(key, trust_domain, holder.subject(trust_domain),
                                                               holder.scopes)))
                  for role, holder in TOKEN_HOLDERS.items()}
        # With burst workers, the schedd verifies the autoscaler's token with a key of its own.
        verify_keys = {role: {} for role in tokens}
        if args.schedd_verifies_autoscaler:
            verify_keys["schedd"] = {SCHEDD_KEY_ID: pulumi.Output.secret(password.result.apply(
                lambda key: password_file_base64(schedd_key(key))))}
        token_secrets = {role: k8s.core.v1.Secret(
            token_secret_name(instance, role), opts=self.object_options(), **token_secret(
                instance, role, namespace, base64_text(token), verify_keys[role]))
            for role, token in tokens.items()}

        # A hash of a 240-bit random password, or of a token signed with a key derived from
        # it, reveals nothing, and as a plain value it keeps the Deployments' specs readable
        # in previews.
        self.credentials = {role: Credential(token_secrets[role], pulumi.Output.unsecret(
                                pulumi.Output.all(tokens[role], *verify_keys[role].values())
                                .apply(lambda parts: sha256("".join(parts)))))
                            for role in tokens}
        self.credentials.update({role: Credential(secret, pulumi.Output.unsecret(password.result.apply(sha256)))
                                 for role in SIGNING_KEY_ROLES})
        self.signing_key = pulumi.Output.secret(password.result)
        self.submit_token = tokens["schedd"]
        self.worker_token = tokens["worker"]
        self.register_outputs({"signing_key": self.signing_key, "submit_token": self.submit_token,
                               "worker_token": self.worker_token})
