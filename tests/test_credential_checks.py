"""The credential probes the emulator and real-cluster tests share (tests/credential_checks.py),
fed HTCondor's own output (condor_ping and condor_off of HTCondor 23.9, as the emulator's
pods print it): a refusal is read with the daemon's reason, and a probe that reached no
daemon, or a command no daemon refused, is never read as a refusal."""

import subprocess

import pytest

from tests.credential_checks import NOT_AUTHENTICATED, Answer, authorizations, denied, refusal

WORKER = "worker@htcondor-central-manager.htcondor.svc.cluster.local"
# condor_ping -verbose READ WRITE at the collector, from a worker.
AT_THE_COLLECTOR = f"""\
Destination:                 daemon at <10.244.0.2:9618>
Remote Version:              $CondorVersion: 23.9.6 2026-07-12 PackageID: 23.9.6+dfsg-2.1+b10 $
Local  Version:              $CondorVersion: 23.9.6 2026-07-12 PackageID: 23.9.6+dfsg-2.1+b10 $
Session ID:                  htcondor-central-manager-ba11dcd1f9-d1fbe:66:1796229996:20
Instruction:                 READ
Command:                     60020
Encryption:                  AES
Integrity:                   AES
Authenticated using:         IDTOKENS
All authentication methods:  FS,TOKEN
Remote Mapping:              {WORKER}
Authorized:                  TRUE

WRITE failed!
SECMAN:2010:Received "DENIED" from server for user {WORKER} using method IDTOKENS.

"""
# The same at a schedd, which holds no key to check the worker's token.
AT_THE_SCHEDD = """\
READ failed!
AUTHENTICATE:1003:Failed to authenticate with any method
AUTHENTICATE:1004:Failed to authenticate using IDTOKENS
AUTHENTICATE:1004:Failed to authenticate using FS

WRITE failed!
AUTHENTICATE:1003:Failed to authenticate with any method
AUTHENTICATE:1004:Failed to authenticate using IDTOKENS
AUTHENTICATE:1004:Failed to authenticate using FS

"""


class Pod:
    """A pod whose commands print the given output."""

    def __init__(self, stdout: str, stderr: str = "", returncode: int = 1):
        self.result = subprocess.CompletedProcess([], returncode, stdout, stderr)

    def exec(self, command, user=None, timeout=60, stdin=None):
        return self.result


def test_each_level_is_the_identity_allowed_or_the_daemons_reason_for_refusing():
    assert authorizations(Pod(AT_THE_COLLECTOR), "<10.244.0.2:9618>", ("READ", "WRITE")) == {
        "READ": Answer(WORKER), "WRITE": Answer(None, denied(WORKER))}
    assert authorizations(Pod(AT_THE_SCHEDD), "<10.244.0.4:9618>", ("READ", "WRITE")) == {
        "READ": Answer(None, NOT_AUTHENTICATED), "WRITE": Answer(None, NOT_AUTHENTICATED)}


def test_a_daemon_never_reached_is_no_refusal():
    with pytest.raises(AssertionError):
        authorizations(Pod("", "ERROR: failed to make connection to <10.244.0.250:9618>\n"), "<10.244.0.250:9618>",
                       ("READ",))
    with pytest.raises(AssertionError, match="no refusal by the daemon"):
        authorizations(Pod("READ failed!\nSECMAN:2003:TCP connection to daemon at <10.244.0.250:9618> failed.\n"),
                       "<10.244.0.250:9618>", ("READ",))


def test_condor_off_refusals_and_what_is_none():
    # condor_off at a master that knows the worker, and at one that cannot check its token
    # (which condor_off reports with exit status 0).
    assert refusal(f'SECMAN:2010:Received "DENIED" from server for user {WORKER} using method IDTOKENS.\n'
                   "Can't send Kill-Daemon command to daemon at <10.244.0.3:9618>\n") == denied(WORKER)
    assert refusal('Sent "Kill-Daemon" command for "schedd" to schedd at <10.244.0.5:9618>\nERROR\n'
                   "AUTHENTICATE:1003:Failed to authenticate with any method\n") == NOT_AUTHENTICATED
    # The same words a command to the schedd daemon itself printed: it does not know the
    # command, whatever it would allow. Not a refusal.
    with pytest.raises(AssertionError):
        refusal("SECMAN:2011:Connection closed during command authorization. Probably due to an unknown command.\n"
                "Can't send Kill-Daemon command to schedd at <10.244.0.4:9618>\n")
