"""Whether a host reaches an address, and how it fails when it does not: a test of a
NetworkPolicy asserts the one outcome the policy gives, never just "not connected", so a
probe that fails for another reason (no route, nothing listening, a broken probe) is not
read as the policy's doing.

A NetworkPolicy drops what it does not allow: no answer at all, so the connect times out
(the emulator's policies end in nftables `drop`, as kube-router's and most CNIs' do). A
connect that is answered with a reset or an ICMP reject is "refused": the packet got there
(or to a Service without endpoints, which kube-proxy rejects)."""

# Each target HOST:PORT: connected, refused or timeout (no answer within 3 s). Also run as
# a job's script (tests/test_job_confinement.py), from inside the job.
PROBE = """#!/bin/bash
for target in "$@"; do
    host=${target%:*}; port=${target##*:}
    if timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then result=connected
    elif [ $? -eq 124 ]; then result=timeout
    else result=refused
    fi
    echo "$target $result"
done
"""


def outcomes(text: str) -> dict[str, str]:
    """PROBE's output: each target's outcome."""
    return dict(line.split() for line in text.splitlines() if line.strip())


def connections(pod, targets: list[str]) -> dict[str, str]:
    """What a connect from `pod` to each of `targets` (HOST:PORT) comes to: connected,
    refused or timeout."""
    result = pod.exec(["bash", "-c", PROBE, "probe", *targets], timeout=10 + 5 * len(targets))
    assert result.returncode == 0, result.stderr
    found = outcomes(result.stdout)
    assert set(found) == set(targets), result.stdout
    return found
