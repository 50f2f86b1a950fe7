"""The worker's preStop hook (pool/files/prestop-drain.sh) where the drain cannot start, with
a stand-in for condor_off: it says why and fails, so Kubernetes records it (a
FailedPreStopHook event with the message) and stops the container all the same. Its drain
itself runs on real HTCondor in the emulator (tests/test_no_job_lost.py: the peaceful
shutdown reaches the startd, and the hook exits 0).

Only paths that end before the hook looks for a startd are run here: it looks through
/proc, which outside a pod shows every process of the machine, an emulated worker's too."""

import subprocess

import pytest

from tests.pod_programs import with_stand_ins

FAKE_CONDOR_OFF = """#!/bin/sh
echo "$*" > "$STATE/condor_off.args"
printf '%s\\n' "$OUTPUT"
exit "$STATUS"
"""
# MAXJOBRETIREMENTTIME: far beyond the test's timeout, so that a hook that went on past the
# check would be stopped while it waits, before it could signal any startd it found.
FAKE_CONFIG_VAL = "#!/bin/sh\necho 3600\n"


@pytest.mark.parametrize("status, output", [
    (1, "Can't find address for local master"),  # no master: one that never started, or died
    # The master refused it; condor_off still exits 0 after a refusal.
    (0, "ERROR\nAUTHENTICATE:1003:Failed to authenticate with any method"),
])
def test_a_drain_that_cannot_start_says_why_and_fails_the_hook(tmp_path, status, output):
    script, env = with_stand_ins(tmp_path, "prestop-drain.sh",
                                 {"condor_off": FAKE_CONDOR_OFF, "condor_config_val": FAKE_CONFIG_VAL},
                                 STATUS=str(status), OUTPUT=output)
    result = subprocess.run(["/bin/sh", str(script)], env=env, capture_output=True, text=True, timeout=10)
    assert (tmp_path / "condor_off.args").read_text().split() == ["-peaceful", "-daemon", "startd"]
    assert result.returncode == 1, result
    assert result.stderr.startswith("prestop-drain: the startd was not told to drain: condor_off said: ")
    assert output.splitlines()[-1] in result.stderr
