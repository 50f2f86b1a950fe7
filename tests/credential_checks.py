"""What a pod's own credentials let it do to the pool, asked with HTCondor's own tools from
inside the pod: for the emulator's pods and the real cluster's alike (anything whose
`exec(command, user=None, timeout=..., stdin=None)` runs in the pod)."""

import base64
import re
from dataclasses import dataclass

from pool.roles import pods

FAKE_ADS = {
    # condor_advertise command: an ad of that kind, with a name no real daemon has.
    "UPDATE_SCHEDD_AD": 'MyType = "Scheduler"\nName = "fake-schedd"\nMyAddress = "<10.244.99.99:9618>"\n'
                        'ScheddIpAddr = "<10.244.99.99:9618>"\n',
    "UPDATE_NEGOTIATOR_AD": 'MyType = "Negotiator"\nName = "fake-negotiator"\nMyAddress = "<10.244.99.99:9618>"\n',
    "UPDATE_COLLECTOR_AD": 'MyType = "Collector"\nName = "fake-collector"\nMyAddress = "<10.244.99.99:9618>"\n',
    "UPDATE_STARTD_AD": 'MyType = "Machine"\nName = "slot1@fake-worker"\nMachine = "fake-worker"\n'
                        'MyAddress = "<10.244.99.99:9618>"\nStartdIpAddr = "<10.244.99.99:9618>"\n'
                        'Requirements = true\n',
}
LEVELS = ("READ", "WRITE", "DAEMON", "ADMINISTRATOR", "NEGOTIATOR", "ADVERTISE_MASTER",
          "ADVERTISE_SCHEDD", "ADVERTISE_STARTD")


def advertise(pod, command: str, token_dir: str | None = None):
    """`condor_advertise -debug COMMAND` of a fake ad, with the pod's own credentials (or
    the tokens in `token_dir`)."""
    env = [f"_CONDOR_SEC_TOKEN_DIRECTORY={token_dir}"] if token_dir else []
    script = f'cat > /tmp/fake.ad && exec env {" ".join(env)} condor_advertise -debug {command} /tmp/fake.ad'
    return pod.exec(["sh", "-c", script], stdin=FAKE_ADS[command], timeout=60)


# Why a daemon refused a command, as its client reports it.
NOT_AUTHENTICATED = "not authenticated"  # it could not tell who was asking (no key to check the token)


def denied(identity: str) -> str:
    """The daemon authenticated `identity` and refused it the command."""
    return f"DENIED to {identity}"


def refusal(output: str) -> str:
    """Why an HTCondor tool's command was refused, from its output: denied(identity), or
    NOT_AUTHENTICATED. Any other failure (no connection, an unknown command, no answer)
    raises AssertionError: only a refusal the daemon gave counts as one, so a probe that
    never reached it cannot pass for a refusal. (Exit statuses say nothing: condor_off
    exits 0 when the daemon refused to authenticate it.)"""
    reasons = {denied(user) for user in
               re.findall(r'Received "DENIED" from server for user (\S+) using method \w+', output)}
    if "AUTHENTICATE:1003:Failed to authenticate with any method" in output:
        reasons.add(NOT_AUTHENTICATED)
    assert len(reasons) == 1, f"no refusal by the daemon (or more than one) in: {output}"
    return reasons.pop()


def denied_to(result, identity: str) -> bool:
    """The server authenticated `identity` and refused the command."""
    return refusal(result.stdout + result.stderr) == denied(identity)


@dataclass(frozen=True)
class Answer:
    """A daemon's answer to one authorization level: the identity it authorized, or, where
    it refused, why (see refusal)."""
    identity: str | None
    refused: str | None = None


def _answers(output: str) -> dict[str, Answer]:
    """Each level's Answer from `condor_ping -verbose LEVEL...`: a block of `Key: value`
    lines where it was authorized, `LEVEL failed!` and the error where it was not."""
    answers = {}
    for block in re.split(r"\n\s*\n", output.strip()):
        lines = block.strip().splitlines()
        failed = re.fullmatch(r"(\w+) failed!", lines[0].strip()) if lines else None
        if failed:
            answers[failed.group(1)] = Answer(None, refusal("\n".join(lines[1:])))
            continue
        fields = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines)}
        if "Instruction" in fields:
            assert fields.get("Authorized") == "TRUE", block
            answers[fields["Instruction"]] = Answer(fields["Remote Mapping"])
    return answers


def authorizations(pod, address: str, levels=LEVELS) -> dict[str, Answer]:
    """`condor_ping` of each level at a daemon's `address`, with the pod's own credentials:
    the identity the daemon authorized at each level, or why it refused (never a failure to
    reach it: see refusal)."""
    result = pod.exec(["condor_ping", "-verbose", "-addr", address, *levels], timeout=120)
    table = _answers(result.stdout)
    assert set(table) == set(levels), result.stdout + result.stderr
    return table


def granted(table: dict[str, Answer]) -> dict[str, str]:
    """The levels an authorizations() table allowed, each with the identity it allowed."""
    return {level: answer.identity for level, answer in table.items() if answer.identity}


def refusals(table: dict[str, Answer]) -> set[str]:
    """Why the levels an authorizations() table did not allow were refused."""
    return {answer.refused for answer in table.values() if not answer.identity}


def address_of(pod, daemon: str, name: str) -> str:
    """A daemon's address as the collector advertises it (`daemon` as condor_status names
    the kind: -master, -schedd, ...)."""
    # A constraint, not a name argument: condor_status would look a name up as a host.
    result = pod.exec(["condor_status", f"-{daemon}", "-constraint", f'Name == "{name}"', "-af", "MyAddress"],
                      timeout=60)
    address = result.stdout.strip()
    assert address.startswith("<"), (daemon, name, result)
    return address


def wait_for_address(pod, daemon: str, name: str, timeout: float = 60) -> str:
    """A daemon's address once the collector has its ad (a daemon just started advertises
    within seconds; a master about 5 s after it starts)."""
    from tests.podsim.kubelet import wait_until

    def advertised():
        result = pod.exec(["condor_status", f"-{daemon}", "-constraint", f'Name == "{name}"', "-af", "MyAddress"],
                          timeout=60)
        return result.stdout.strip() if result.stdout.strip().startswith("<") else None
    return wait_until(advertised, timeout, 1, f"the {daemon} ad of {name}")


FIND_SCRIPT = """\
import os, stat, sys
needles = [bytes.fromhex(h) for h in sys.stdin.read().split()]
for top, dirs, files in os.walk("/"):
    if top in ("/proc", "/sys", "/dev"):
        dirs[:] = []
        continue
    for name in files:
        path = os.path.join(top, name)
        try:
            info = os.lstat(path)
            # Regular files only: opening HTCondor's named pipes would block.
            if not stat.S_ISREG(info.st_mode) or info.st_size > 1 << 28:
                continue
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if any(n in data for n in needles):
            print(path)
"""


def files_holding(pod, secrets: list[bytes]) -> list[str]:
    """Every file in the pod (its image and volumes, not /proc, /sys or /dev) that holds one
    of `secrets`, searched as root. The secrets reach the pod on stdin, never as arguments."""
    result = pod.exec(["python3", "-c", FIND_SCRIPT], stdin=" ".join(s.hex() for s in secrets), timeout=300)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.strip()]


def token_subjects(pod) -> list[str]:
    """The subjects of the tokens `condor_token_list` reads in the pod."""
    result = pod.exec(["condor_token_list"], timeout=60)
    return re.findall(r'"sub":"([^"]+)"', result.stdout)


def held_credential(pod, role: str) -> bytes:
    """The bytes of the credential file a pod of `role` holds (the key, or its token)."""
    path = pods.credential_file(role)
    result = pod.exec(["od", "-An", "-tx1", path], timeout=60)
    assert result.returncode == 0, (pod, result.stderr)
    return bytes.fromhex("".join(result.stdout.split()))


def write_token(pod, token: str) -> str:
    """Write `token` into a new directory in the pod (as HTCondor wants it: mode 0600);
    returns the directory. The write is checked, so a probe with it tests the token."""
    written = pod.exec(["sh", "-c", 'd=$(mktemp -d /tmp/token.XXXXXX) && base64 -d > "$d/token" && '
                                    'chmod 600 "$d/token" && wc -c < "$d/token" && echo "$d"'],
                       stdin=base64.b64encode(token.encode()).decode(), timeout=60)
    assert written.returncode == 0, written.stderr
    size, directory = written.stdout.split()
    assert int(size) == len(token.encode()), (size, len(token))
    return directory


def answer_with_token(pod, token: str, address: str, level: str = "READ") -> Answer:
    """How the daemon at `address` answers `level` when `pod` presents only `token` (IDTOKENS
    alone, from a directory of its own): the identity it authorized, or why it refused.
    Pair a refusal with an accepted token through the same probe, so a broken probe cannot
    pass as one."""
    directory = write_token(pod, token)
    result = pod.exec(["env", f"_CONDOR_SEC_TOKEN_DIRECTORY={directory}",
                       "_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS=IDTOKENS",
                       "condor_ping", "-verbose", "-addr", address, level], timeout=60)
    answers = _answers(result.stdout)
    assert level in answers, f"condor_ping gave no answer for {level}: {result.stdout}{result.stderr}"
    return answers[level]


def identity_with_token(pod, token: str, address: str) -> str | None:
    """The identity the daemon at `address` grants READ to when `pod` presents only `token`,
    or None if it refuses it (a refusal the daemon gave: see answer_with_token)."""
    return answer_with_token(pod, token, address).identity
