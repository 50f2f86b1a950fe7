"""The container entrypoint, run with stand-ins for HTCondor's commands: it prepares the
local directories, keeps condor_master as its child (never PID 1 itself), passes SIGTERM
on and exits with the master's status."""

import os
import resource
import signal
import subprocess
import time

import pytest

from tests.pod_programs import with_stand_ins

FAKE_MASTER = """#!/bin/sh
env > "$STATE/master.env"
echo "$$ $PPID $*" > "$STATE/master.started"
trap 'echo graceful > "$STATE/master.stopped"; exit 0' TERM
while :; do sleep 0.05; done
"""
# HTCondor's own defaults for the daemons' file-descriptor limits.
FAKE_CONFIG_VAL = """#!/bin/sh
case "$1" in
    COLLECTOR_MAX_FILE_DESCRIPTORS) echo "${COLLECTOR_FDS:-10240}" ;;
    SCHEDD_MAX_FILE_DESCRIPTORS|SHARED_PORT_MAX_FILE_DESCRIPTORS) echo "${OTHER_FDS:-20000}" ;;
    *) echo "$STATE/local/$1" ;;
esac
"""
# The directories the entrypoint makes for HTCondor, with their modes: FS authentication's
# is shared by every local user, as /tmp is.
DIRECTORIES = {"LOG": 0o755, "SPOOL": 0o755, "EXECUTE": 0o755, "LOCK": 0o755, "RUN": 0o755,
               "FS_LOCAL_DIR": 0o1777}


def start(script, env, **kwargs) -> subprocess.Popen:
    """The entrypoint in a process group of its own, as a container's processes are: stopping
    the group also stops the fake master (killing only the shell would orphan it)."""
    return subprocess.Popen(["/bin/sh", str(script)], env=env, start_new_session=True, **kwargs)


def stop(shell: subprocess.Popen) -> None:
    try:
        os.killpg(shell.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    shell.wait()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def fake_condor(tmp_path):
    script, env = with_stand_ins(tmp_path, "entrypoint.sh",
                                 {"condor_master": FAKE_MASTER, "condor_config_val": FAKE_CONFIG_VAL},
                                 CONDOR_CONFIG="/nonexistent/condor_config")
    return tmp_path, script, env


def test_master_runs_as_a_child_and_stops_gracefully_on_sigterm(fake_condor):
    state, script, env = fake_condor
    shell = start(script, env)
    try:
        assert wait_for(lambda: (state / "master.started").exists()), "master never started"
        pid, ppid, args = (state / "master.started").read_text().split(" ", 2)
        assert int(ppid) == shell.pid and int(pid) != shell.pid
        assert args.strip() == "-f"
        for knob in DIRECTORIES:
            assert (state / "local" / knob).is_dir()
        shell.send_signal(signal.SIGTERM)
        assert shell.wait(timeout=10) == 0
        assert (state / "master.stopped").read_text().strip() == "graceful"
    finally:
        stop(shell)


def test_a_master_that_dies_takes_the_container_down_with_its_status(fake_condor):
    state, script, env = fake_condor
    (state / "bin" / "condor_master").write_text("#!/bin/sh\nexit 3\n")
    assert subprocess.run(["/bin/sh", str(script)], env=env, timeout=10).returncode == 3


def test_it_refuses_to_start_without_the_generated_config(fake_condor):
    _, script, env = fake_condor
    del env["CONDOR_CONFIG"]
    result = subprocess.run(["/bin/sh", str(script)], env=env, capture_output=True, text=True, timeout=10)
    assert result.returncode != 0 and "CONDOR_CONFIG" in result.stderr


def master_env(state, script, env, hard_nofile):
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard_nofile), hard_nofile))
    shell = start(script, env, preexec_fn=limit)
    try:
        assert wait_for(lambda: (state / "master.started").exists()), "master never started"
        return dict(line.split("=", 1) for line in (state / "master.env").read_text().splitlines() if "=" in line)
    finally:
        stop(shell)


def test_daemons_never_ask_for_more_descriptors_than_the_container_allows(fake_condor):
    # Daemons die if they cannot raise their limit to what they ask for.
    env = master_env(*fake_condor, hard_nofile=15000)
    assert env["_CONDOR_SCHEDD_MAX_FILE_DESCRIPTORS"] == "15000"
    assert env["_CONDOR_SHARED_PORT_MAX_FILE_DESCRIPTORS"] == "15000"
    assert "_CONDOR_COLLECTOR_MAX_FILE_DESCRIPTORS" not in env  # 10240 fits: left alone


def test_descriptor_limits_are_left_alone_when_they_fit(fake_condor):
    state, script, env = fake_condor
    # Requests below the limit (a hard limit can only be lowered here, not raised).
    env = master_env(state, script, {**env, "COLLECTOR_FDS": "1000", "OTHER_FDS": "2000"}, hard_nofile=2048)
    assert not [k for k in env if k.endswith("_MAX_FILE_DESCRIPTORS")]


def test_directories_on_a_volume_under_fs_group_are_made_with_exactly_their_modes(fake_condor):
    """Under fsGroup, Kubernetes makes an emptyDir setgid, and every directory made in it
    inherits the bit. HTCondor's FS authentication accepts only a directory of mode exactly
    0700 in FS_LOCAL_DIR: with the bit inherited there, no local tool could authenticate."""
    state, script, env = fake_condor
    volume = state / "local"
    volume.mkdir()
    volume.chmod(0o2777)
    shell = start(script, env)
    try:
        assert wait_for(lambda: (state / "master.started").exists()), "master never started"
        for knob, mode in DIRECTORIES.items():
            assert oct((volume / knob).stat().st_mode & 0o7777) == oct(mode), knob
    finally:
        stop(shell)


def test_a_restart_leaves_directories_that_are_already_set_up_alone(fake_condor):
    """The emptyDir outlives a container restart and the schedd's SPOOL outlives its pod: their
    directories are already the condor user's, and the confined root (no CAP_FOWNER) may not
    change their mode. The entrypoint must leave them be and start HTCondor."""
    state, script, env = fake_condor
    nobody = 65534
    for knob in DIRECTORIES:
        directory = state / "local" / knob
        directory.mkdir(parents=True)
        directory.chmod(0o700)
        os.chown(directory, nobody, nobody)
    shell = start(script, env)
    try:
        assert wait_for(lambda: (state / "master.started").exists()), "master never started"
        for knob in DIRECTORIES:
            info = (state / "local" / knob).stat()
            assert (info.st_uid, info.st_mode & 0o777) == (nobody, 0o700), knob
    finally:
        stop(shell)


def test_the_credential_is_copied_private_to_whoever_runs_htcondor(fake_condor):
    """HTCondor ignores a key or token file that others can read or someone else owns; a
    Secret's files are root's, behind the kubelet's `..data` symlinks, and group-readable
    under fsGroup. The entrypoint gives HTCondor a private copy."""
    state, script, env = fake_condor
    source, target = state / "secret", state / "credential"
    (source / "..data").mkdir(parents=True)
    target.mkdir()
    (source / "..data" / "token").write_text("header.payload.signature\n")
    (source / "..data" / "token").chmod(0o440)
    (source / "token").symlink_to("..data/token")
    (target / "token").write_text("a stale copy\n")  # from before a container restart
    env = {**env, "HTCONDOR_POOL_CREDENTIAL_SOURCE": str(source), "HTCONDOR_POOL_CREDENTIAL_DIR": str(target)}
    shell = start(script, env)
    try:
        assert wait_for(lambda: (state / "master.started").exists()), "master never started"
        copy = target / "token"
        assert copy.read_text() == "header.payload.signature\n" and not copy.is_symlink()
        info = copy.stat()
        assert (info.st_uid, info.st_mode & 0o777) == (os.getuid(), 0o400)  # its own, to read
        assert sorted(p.name for p in target.iterdir()) == ["token"]  # nothing from ..data
    finally:
        stop(shell)
