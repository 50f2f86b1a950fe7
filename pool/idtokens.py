"""HTCondor IDTOKENS, minted from the pool's signing key, byte for byte as HTCondor's own
`condor_token_create` signs them (src/condor_io/condor_auth_passwd.cpp, generate_token;
the key as src/condor_utils/store_cred.cpp, getTokenSigningKey, reads it):

- the key named POOL is the pool password file unscrambled, whole, then doubled; any other
  key (its file's name in SEC_PASSWORD_DIRECTORY) is its file unscrambled, once;
- the JWT key is HKDF-SHA256 of it (salt "htcondor", info "master jwt", 32 bytes);
- the token is an HS256 JWT whose header names the key (`kid`) and whose claims are `sub`
  (the identity the token proves), `iss` (the pool's TRUST_DOMAIN, which a client compares
  with the server's before sending the token), `jti` (required by servers since 23.9) and
  `scope`: the authorization levels it is limited to, as `condor:/LEVEL` words.

A server checks the signature with the same key, so only pods that verify tokens need it.
Tokens minted here carry no `iat` or `exp` (both optional for HTCondor) and a `jti`
derived from the key and the claims: the same key gives the same token, so re-running the
program changes nothing, and a new key (passwordVersion) re-mints every token.
"""

import hashlib
import hmac

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

POOL_KEY_ID = "POOL"


def signing_key(password: str, key_id: str = POOL_KEY_ID) -> bytes:
    """The JWT signing key HTCondor derives from the password file of key `key_id` (the
    pool password's, POOL, is doubled first: HTCondor's compatibility with its older pool
    passwords)."""
    key = password.encode("utf-8") * (2 if key_id == POOL_KEY_ID else 1)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"htcondor", info=b"master jwt").derive(key)


def mint(password: str, trust_domain: str, subject: str, scopes: tuple[str, ...], key_id: str = POOL_KEY_ID) -> str:
    """An IDTOKEN for `subject`, limited to the authorization levels `scopes`, signed with
    the key `key_id` whose password file holds `password`."""
    key = signing_key(password, key_id)
    claims = {"sub": subject, "iss": trust_domain, "scope": " ".join(f"condor:/{s}" for s in scopes)}
    claims["jti"] = hmac.new(key, repr(sorted(claims.items())).encode(), hashlib.sha256).hexdigest()[:32]
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": key_id})


def claims(token: str) -> dict:
    """A token's claims, unverified (what condor_token_list shows)."""
    return jwt.decode(token, options={"verify_signature": False})


def verify(token: str, password: str, key_id: str = POOL_KEY_ID) -> dict:
    """A token's claims if the key `key_id` of `password` signed it; jwt.InvalidTokenError
    otherwise."""
    return jwt.decode(token, signing_key(password, key_id), algorithms=["HS256"])
