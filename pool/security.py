"""Least privilege: who each role's container runs as, what it may do, and why.

The central manager's daemons never act as another user: its pod runs as the image's
`condor` user (CONDOR_ID) with every Linux capability dropped, and meets the Kubernetes Pod
Security Standard `restricted`. The schedd's and workers' daemons start as root and run as
`condor` or as each job's owner, switching identity as they go (HTCondor's "priv states"):
their containers drop every capability but the few their role uses. Workers may instead
run unprivileged (`unprivilegedWorkers`), as `condor` with no capability, so that their
jobs run as that one user, as the OSPool's backfill containers do.

Every container also may not gain new privileges (no setuid, no file capabilities), runs
under the runtime's default seccomp profile, and cannot write its image: everything
HTCondor writes lives on volumes.
"""

# The condor user and group of the official HTCondor images (build/docker/services/base/
# container-install-htcondor.sh: `useradd -u 64`); images for this program must have it.
CONDOR_ID = 64

# The capabilities each role that runs as root keeps, once ALL are dropped, with why.
ROLE_CAPABILITIES: dict[str, dict[str, str]] = {
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


def runs_as_root(role: str, unprivileged_workers: bool = False) -> bool:
    return role == "schedd" or (role == "worker" and not unprivileged_workers)


def pod_security_context(role: str, unprivileged_workers: bool = False) -> dict:
    context = {"seccompProfile": {"type": "RuntimeDefault"}}
    if not runs_as_root(role, unprivileged_workers):
        # As the condor user; volumes (its local directory, its credential) are its group's.
        context.update({"runAsNonRoot": True, "runAsUser": CONDOR_ID, "runAsGroup": CONDOR_ID,
                        "fsGroup": CONDOR_ID})
    return context


def container_security_context(role: str, unprivileged_workers: bool = False) -> dict:
    capabilities = {"drop": ["ALL"]}
    if runs_as_root(role, unprivileged_workers):
        capabilities["add"] = sorted(ROLE_CAPABILITIES[role])
    return {
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": capabilities,
        "readOnlyRootFilesystem": True,
    }


# ---- the Kubernetes Pod Security Standards, as far as these pods can meet or miss them ----
# https://kubernetes.io/docs/concepts/security/pod-security-standards/ (strongest first)
POD_SECURITY_LEVELS = ("restricted", "baseline", "privileged")
_BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                          "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
_RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                       "projected", "secret"}


def pod_security_violations(pod_spec: dict, level: str) -> list[str]:
    """What keeps `pod_spec` from the standard `level` (baseline or restricted)."""
    found = []
    pod_context = pod_spec.get("securityContext", {})
    containers = pod_spec.get("containers", []) + pod_spec.get("initContainers", [])
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(key):
            found.append(f"{key} is true")
    if any("hostPath" in v for v in pod_spec.get("volumes", [])):
        found.append("a hostPath volume")
    for container in containers:
        context = container.get("securityContext", {})
        name = container["name"]
        added = set(context.get("capabilities", {}).get("add", []))
        if context.get("privileged"):
            found.append(f"container {name} is privileged")
        if added - _BASELINE_CAPABILITIES:
            found.append(f"container {name} adds {sorted(added - _BASELINE_CAPABILITIES)}")
        if any(p.get("hostPort") for p in container.get("ports", [])):
            found.append(f"container {name} uses a hostPort")
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {})).get("type")
        if seccomp == "Unconfined":
            found.append(f"container {name}'s seccomp profile is Unconfined")
        if level != "restricted":
            continue
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"container {name} may escalate privileges")
        if "ALL" not in context.get("capabilities", {}).get("drop", []):
            found.append(f"container {name} does not drop ALL capabilities")
        if added - {"NET_BIND_SERVICE"}:
            found.append(f"container {name} adds {sorted(added - {'NET_BIND_SERVICE'})}")
        if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
            found.append(f"container {name} may run as root (runAsNonRoot is not true)")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            found.append(f"container {name} runs as user 0")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"container {name} has no RuntimeDefault or Localhost seccomp profile")
    if level == "restricted":
        for volume in pod_spec.get("volumes", []):
            kinds = set(volume) - {"name"}
            if not kinds <= _RESTRICTED_VOLUMES:
                found.append(f"volume {volume['name']} is of a type restricted forbids: {sorted(kinds)}")
    return found


def pod_security_level(pod_spec: dict) -> str:
    """The strongest Pod Security Standard `pod_spec` meets."""
    return next((level for level in POD_SECURITY_LEVELS[:-1] if not pod_security_violations(pod_spec, level)),
                "privileged")


def weakest(levels) -> str:
    """The strongest standard that all pods of these levels meet."""
    return max(levels, key=POD_SECURITY_LEVELS.index)
