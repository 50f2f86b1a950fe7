"""Who holds which credential, and what it lets them do.

The random pool password is the pool's signing key. Only the central manager holds it: its
collector verifies every token presented to it, and its negotiator and collector sign
their own. Every other role holds an IDTOKEN minted from the key (pool/idtokens.py),
limited to what that role does:

- the schedd advertises itself and its master, and reads the pool;
- a worker advertises its slots and its master, and reads the pool.

Neither verifies a token, so neither needs the key: the negotiator reaches the schedd,
and the schedd its claimed workers, through security sessions the match itself carries
(HTCondor's SEC_ENABLE_MATCH_PASSWORD_AUTHENTICATION, on by default), not by presenting a
token. What a token may do is the intersection of its scopes and the ALLOW lists of the
generated configuration (pool/condor_config.py).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class TokenHolder:
    user: str  # the identity is USER@TRUST_DOMAIN
    scopes: tuple[str, ...]

    def subject(self, trust_domain: str) -> str:
        return f"{self.user}@{trust_domain}"


# The roles whose pods mount the signing key.
SIGNING_KEY_ROLES = ("centralManager",)

TOKEN_HOLDERS = {
    "schedd": TokenHolder("submit", ("READ", "ADVERTISE_MASTER", "ADVERTISE_SCHEDD")),
    "worker": TokenHolder("worker", ("READ", "ADVERTISE_MASTER", "ADVERTISE_STARTD")),
}
