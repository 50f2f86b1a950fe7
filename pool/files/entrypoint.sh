#!/bin/sh
# htcondor-pool container entrypoint, shipped in the pool's ConfigMap so that any image
# with HTCondor and a POSIX shell works.
#
# condor_master runs in the foreground as a child of this shell, never as PID 1: the
# official images' start script notes that "the master will crash if run as pid 1", and a
# PID 1 has no default signal handlers. This shell passes the kubelet's SIGTERM on to the
# master, which then shuts its daemons down gracefully.
set -eu
: "${CONDOR_CONFIG:?CONDOR_CONFIG must name the generated configuration}"

# HTCondor's local directories live on an emptyDir: create them, owned by the condor user.
# FS authentication's (FS_LOCAL_DIR) is shared, like /tmp: anyone may meet a daemon there.
condor_user=$(id -un condor 2>/dev/null || echo root)
# Only a new directory, or one still ours (a fresh volume): the emptyDir outlives a
# container restart and the schedd's SPOOL its pod, and their directories are then already
# condor's, which root without CAP_FOWNER could not chmod. A directory made on a volume
# under fsGroup inherits its setgid bit, which chmod keeps unless told: clear it.
for entry in LOG:0755 SPOOL:0755 EXECUTE:0755 LOCK:0755 RUN:0755 FS_LOCAL_DIR:1777; do
    dir=$(condor_config_val "${entry%%:*}")
    if [ ! -e "$dir" ] || [ -O "$dir" ]; then
        mkdir -p "$dir"
        chmod "${entry#*:}" "$dir"  # mode first: once the directory is condor's, root cannot change it
        chmod g-s "$dir"
        chown "$condor_user:" "$dir"
    fi
done

# The role's credential (the pool's key, or the role's token), from its Secret into the
# memory-backed directory HTCondor reads it from: owned by whoever runs HTCondor here and
# private to it, as HTCondor insists (it ignores a key or token file others can read, or
# someone else owns). A Secret's files are root's, or group-readable under fsGroup.
if [ -n "${HTCONDOR_POOL_CREDENTIAL_SOURCE:-}" ]; then
    : "${HTCONDOR_POOL_CREDENTIAL_DIR:?HTCONDOR_POOL_CREDENTIAL_DIR must name where the credential goes}"
    for source in "$HTCONDOR_POOL_CREDENTIAL_SOURCE"/*; do
        [ -f "$source" ] || continue
        target="$HTCONDOR_POOL_CREDENTIAL_DIR/$(basename "$source")"
        rm -f "$target"
        (umask 077 && cp "$source" "$target")
    done
fi

# /tmp is an emptyDir (the image is read-only), which Kubernetes creates mode 0777: make it
# sticky, as a shared /tmp must be, so that users cannot remove each other's files.
if [ -d /tmp ] && [ -O /tmp ]; then
    chmod 1777 /tmp
fi

# The schedd's submitters keep their files on its volume, mounted empty over their home
# directories' parent (HTCONDOR_POOL_HOME_DIR): give each of the image's users whose home
# lies there that directory, once; later pods find it, with its files, on the volume.
if [ -n "${HTCONDOR_POOL_HOME_DIR:-}" ]; then
    while IFS=: read -r user _ uid gid _ home _; do
        case "$home" in
            "$HTCONDOR_POOL_HOME_DIR"/*)
                if [ ! -d "$home" ]; then
                    mkdir -p "$home"
                    chmod 0700 "$home"
                    chown "$uid:$gid" "$home"
                    echo "entrypoint: created $home for $user on the schedd's volume"
                fi ;;
        esac
    done < /etc/passwd
fi

# Daemons die if they cannot raise their file-descriptor limit to what they ask for: where
# a daemon asks for more than the container's hard limit, lower its request to that limit.
hard_nofile=$(ulimit -Hn)
if [ "$hard_nofile" != unlimited ]; then
    for daemon in COLLECTOR SCHEDD SHARED_PORT; do
        wanted=$(condor_config_val "${daemon}_MAX_FILE_DESCRIPTORS" 2>/dev/null || true)
        case "$wanted" in
            ''|*[!0-9]*) ;;  # not set: HTCondor keeps the process's own limit
            *) if [ "$wanted" -gt "$hard_nofile" ]; then
                   export "_CONDOR_${daemon}_MAX_FILE_DESCRIPTORS=$hard_nofile"
               fi ;;
        esac
    done
fi

condor_master -f &
master=$!
trap 'kill -TERM "$master" 2>/dev/null' TERM INT
# The first wait returns early when a signal arrives; wait again for the master to finish.
status=0
wait "$master" || status=$?
if kill -0 "$master" 2>/dev/null; then
    status=0
    wait "$master" || status=$?
fi
exit "$status"
