"""The pool password file, byte for byte as `condor_store_cred -f FILE` writes it.

HTCondor (src/condor_utils/store_cred.cpp, write_password_file, 8.5.4 and later) XORs the
password with the repeating key DE AD BE EF and writes exactly that many bytes, with no
trailing NUL. Readers (read_password_from_filename) cut the *scrambled* bytes at the first
NUL, then unscramble: a password byte that equals the key byte at its position would
scramble to NUL and silently truncate the password, so such passwords are refused.
"""

import base64

_KEY = bytes([0xDE, 0xAD, 0xBE, 0xEF])


def scramble(password: str) -> bytes:
    scrambled = _xor(password.encode("utf-8"))
    if b"\0" in scrambled:
        raise ValueError("this password would scramble to a NUL byte, where HTCondor stops "
                         "reading the file; use ASCII")
    return scrambled


def unscramble(data: bytes) -> str:
    """What HTCondor reads from a password file."""
    return _xor(data.split(b"\0", 1)[0]).decode("utf-8")


def _xor(data: bytes) -> bytes:
    return bytes(b ^ _KEY[i % len(_KEY)] for i, b in enumerate(data))


def password_file_base64(password: str) -> str:
    """The file's content as a Kubernetes Secret's `data` value."""
    return base64.b64encode(scramble(password)).decode("ascii")
