"""The pool password file, byte for byte as `condor_store_cred -f FILE` writes it.

HTCondor (src/condor_utils/store_cred.cpp, write_password_file, 8.5.4 and later) XORs the
password with the repeating key DE AD BE EF and writes exactly that many bytes, with no
trailing NUL. Readers cut the unscrambled text at the first NUL, so the password must not
contain one.
"""

import base64

_KEY = bytes([0xDE, 0xAD, 0xBE, 0xEF])


def scramble(password: str) -> bytes:
    raw = password.encode("utf-8")
    if b"\0" in raw:
        raise ValueError("an HTCondor pool password cannot contain a NUL byte")
    return bytes(b ^ _KEY[i % len(_KEY)] for i, b in enumerate(raw))


def unscramble(data: bytes) -> str:
    plain = bytes(b ^ _KEY[i % len(_KEY)] for i, b in enumerate(data))
    return plain.split(b"\0", 1)[0].decode("utf-8")


def password_file_base64(password: str) -> str:
    """The file's content as a Kubernetes Secret's `data` value."""
    return base64.b64encode(scramble(password)).decode("ascii")
