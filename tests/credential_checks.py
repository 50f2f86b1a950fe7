"""What a pod's own credentials let it do to the pool, asked with HTCondor's own tools from
inside the pod: for the emulator's pods and the real cluster's alike (anything whose
`exec(command, user=None, timeout=..., stdin=None)` runs in the pod)."""

import base64
import re

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


def denied_to(result, identity: str) -> bool:
    """The server authenticated `identity` and refused the command."""
    return f'Received "DENIED" from server for user {identity} using method IDTOKENS' in result.stdout + result.stderr


def authorizations(pod, address: str) -> dict[str, str | None]:
    """`condor_ping -table` of every level at a daemon's `address`: the identity the daemon
    authorized at each level, or None where it refused."""
    result = pod.exec(["condor_ping", "-addr", address, "-table", *LEVELS], timeout=120)
    table = {}
    for line in result.stdout.splitlines():
        words = line.split()
        if words and words[0] in LEVELS:
            table[words[0]] = words[5] if len(words) > 5 and words[4] == "ALLOW" else None
    assert set(table) == set(LEVELS), result.stdout + result.stderr
    return table


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


def identity_with_token(pod, token: str, address: str) -> str | None:
    """The identity the daemon at `address` grants READ to when `pod` presents only `token`
    (IDTOKENS alone, from a directory of its own), or None if it refuses it. Pair a refusal
    with an accepted token through the same probe, so a broken probe cannot pass as one."""
    directory = write_token(pod, token)
    result = pod.exec(["env", f"_CONDOR_SEC_TOKEN_DIRECTORY={directory}",
                       "_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS=IDTOKENS",
                       "condor_ping", "-addr", address, "-table", "READ"], timeout=60)
    for line in result.stdout.splitlines():
        words = line.split()
        if words and words[0] == "READ":
            return words[5] if len(words) > 5 and words[4] == "ALLOW" else None
    raise AssertionError(f"condor_ping printed no READ row: {result.stdout}{result.stderr}")
