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

import hashlib
import hmac
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

# The metrics exporter (stack config `metrics`) only reads the collector's ads: its token
# may do nothing else. Not a role's: only a pool with metrics has it.
METRICS_TOKEN_HOLDER = TokenHolder("metrics", ("READ",))

# The autoscaler (stack config `maxWorkers`) reads the schedds' idle jobs and the collector's
# slots: READ scope only as well. Only a pool that may burst has it.
AUTOSCALER_TOKEN_HOLDER = TokenHolder("autoscaler", ("READ",))

# The schedd verifies no token signed with the pool's key (it does not hold it), so a reader
# of its queue (the autoscaler) presents a token signed with a key of its own: SCHEDD, in the
# schedd's SEC_PASSWORD_DIRECTORY. HTCondor's client sends each server a token signed with a
# key that server names. The key is derived from the pool's, one way: holding it, the schedd
# can mint tokens only itself accepts, and learns nothing of the pool's key. A new pool
# password (passwordVersion) gives a new one.
SCHEDD_KEY_ID = "SCHEDD"


def schedd_key(pool_password: str) -> str:
    return hmac.new(pool_password.encode(), b"htcondor-pool schedd key", hashlib.sha256).hexdigest()
