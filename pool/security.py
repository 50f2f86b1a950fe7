"""Least privilege: what each role's container may do, and why it needs that.

HTCondor's daemons start as root and run as the `condor` user or as each job's owner,
switching identity as they go (HTCondor's "priv states"), so no container runs as non-root.
Instead each drops every Linux capability but the few its role uses, may not gain new
privileges (no setuid, no file capabilities), runs under the runtime's default seccomp
profile, and cannot write its image: everything HTCondor writes lives on volumes.
"""

# The capabilities each role keeps, once ALL are dropped, with the reason for each.
ROLE_CAPABILITIES: dict[str, dict[str, str]] = {
    "centralManager": {
        "DAC_OVERRIDE": "HTCondor's root processes (the master, its ProcD) write logs, locks "
                        "and sockets into directories the condor user owns",
        "CHOWN": "the entrypoint gives HTCondor's local directories to the condor user",
        "SETUID": "condor_master starts as root and runs the collector and negotiator as condor",
        "SETGID": "the same, for the condor group",
    },
    "schedd": {
        "DAC_OVERRIDE": "HTCondor's root processes (the master, its ProcD) write logs, locks "
                        "and sockets into directories the condor user owns",
        "CHOWN": "the entrypoint gives HTCondor's directories and the submitters' new home "
                 "directories to their owners",
        "SETUID": "the schedd and its shadows act as each job's owner (queue, job log, files)",
        "SETGID": "the same, for the owner's groups",
        "KILL": "the schedd signals the shadows it runs as other users",
    },
    "worker": {
        "DAC_OVERRIDE": "HTCondor's root processes (the master, its ProcD) write logs, locks "
                        "and sockets into directories the condor user owns",
        "CHOWN": "the starter gives each job's scratch directory to the job's user",
        "SETUID": "the starter runs each job as its user, never as root or condor",
        "SETGID": "the same, for the user's groups",
        "KILL": "the starter signals (suspends, ends) jobs running as other users",
    },
}

# Paths HTCondor and its jobs write that are not volumes otherwise: given an emptyDir each,
# so the image itself can stay read-only.
WRITABLE_SCRATCH = {"tmp": "/tmp"}

POD_SECURITY_CONTEXT = {"seccompProfile": {"type": "RuntimeDefault"}}


def container_security_context(role: str) -> dict:
    return {
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": sorted(ROLE_CAPABILITIES[role])},
        "readOnlyRootFilesystem": True,
    }
