"""The Secret's file format is condor_store_cred's (proven against real HTCondor in the
emulator tests); here, its definition."""

import pytest

from pool.password import password_file_base64, scramble, unscramble


def test_scramble_xors_with_deadbeef_and_adds_no_terminator():
    assert scramble("abcde") == bytes([0x61 ^ 0xDE, 0x62 ^ 0xAD, 0x63 ^ 0xBE, 0x64 ^ 0xEF, 0x65 ^ 0xDE])


def test_reading_undoes_writing_and_stops_at_the_first_nul():
    assert unscramble(scramble("s3cret-Pool")) == "s3cret-Pool"
    assert unscramble(scramble("abc") + bytes(253)) == "abc"  # an 8.4-era zero-padded file


def test_a_password_that_would_scramble_to_nul_is_refused():
    # "\u07ad" is UTF-8 DE AD: equal to the key at positions 0 and 1.
    with pytest.raises(ValueError, match="NUL"):
        scramble("\u07ad")


def test_base64_for_the_secret():
    assert password_file_base64("abc") == "v8/d"
