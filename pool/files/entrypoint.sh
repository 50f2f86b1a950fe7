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
condor_user=$(id -un condor 2>/dev/null || echo root)
# Only a new directory, or one still root's (a fresh volume): the emptyDir outlives a
# container restart and the schedd's SPOOL its pod, and their directories are then already
# condor's, which root without CAP_FOWNER could not chmod.
for knob in LOG SPOOL EXECUTE LOCK RUN; do
    dir=$(condor_config_val "$knob")
    if [ ! -e "$dir" ] || [ -O "$dir" ]; then
        mkdir -p "$dir"
        chmod 0755 "$dir"  # mode first: once the directory is condor's, root cannot change it
        chown "$condor_user:" "$dir"
    fi
done

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
