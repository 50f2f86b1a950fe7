#!/bin/sh
# preStop hook of a worker pod: leave the pool without losing work.
#
# Kubernetes runs this before it sends SIGTERM, within the pod's
# terminationGracePeriodSeconds. The startd first shuts down peacefully: it takes no new
# job and lets the running ones finish. Jobs still running after MAXJOBRETIREMENTTIME (the
# grace period less a margin) are ended and go back to the schedd's queue to run
# elsewhere. The hook returns once the startd is gone, so the master's SIGTERM finds
# nothing left to interrupt.
set -u

startd_pid() {
    for comm in /proc/[0-9]*/comm; do
        if [ "$(cat "$comm" 2>/dev/null)" = condor_startd ]; then
            pid=${comm#/proc/}
            echo "${pid%/comm}"
            return 0
        fi
    done
    return 1
}

startd_running() {
    startd_pid >/dev/null
}

retirement=$(condor_config_val MAXJOBRETIREMENTTIME 2>/dev/null) || retirement=0
case "$retirement" in ''|*[!0-9]*) retirement=0 ;; esac
deadline=$(( $(date +%s) + retirement ))

# The local master, found through its address file: this works while the central manager
# is down too. If it cannot be told (no master, or it refused: condor_off may then still
# exit 0, so its output is read too), nothing is drained: say so and fail the hook, so that
# Kubernetes records it (a FailedPreStopHook event with this message). The pod leaves all
# the same: Kubernetes stops a container whose preStop hook failed. The master's graceful
# shutdown on SIGTERM then evicts running jobs (their vacate time exceeds what retirement
# leaves), and they go back to the queue.
told=yes
output=$(condor_off -peaceful -daemon startd 2>&1) || told=no
case "$output" in *ERROR*|*"Can't"*) told=no ;; esac
if [ "$told" = no ]; then
    echo "prestop-drain: the startd was not told to drain: condor_off said: $output" >&2
    exit 1
fi
while startd_running && [ "$(date +%s)" -lt "$deadline" ]; do
    sleep 1
done
if pid=$(startd_pid); then
    # Hand back what is left: the jobs go back to the queue and run elsewhere. A startd
    # shutting down peacefully ignores a graceful shutdown and has no address file left
    # for condor_vacate; SIGQUIT (its fast shutdown) ends the jobs at once. The master,
    # having turned the startd off, does not restart it.
    kill -QUIT "$pid"
    while startd_running; do
        sleep 1
    done
fi
