#!/bin/sh
# preStop hook of a worker pod: leave the pool without losing work.
#
# Kubernetes runs this before it sends SIGTERM, and counts it in the pod's
# terminationGracePeriodSeconds. A graceful startd shutdown takes no new job and gives the
# running ones MAXJOBRETIREMENTTIME to finish; those that do not are vacated back to the
# schedd's queue and run elsewhere. The hook returns once the startd is gone, so the
# master's SIGTERM finds nothing left to interrupt.
set -u

startd_running() {
    for comm in /proc/[0-9]*/comm; do
        [ "$(cat "$comm" 2>/dev/null)" = condor_startd ] && return 0
    done
    return 1
}

# The local master, found through its address file: this works while the central manager
# is down too.
condor_off -graceful -daemon startd || exit 0  # no master to ask: nothing is running

# Kubernetes ends the hook at the grace period anyway; this loop only waits for the drain.
while startd_running; do
    sleep 1
done
