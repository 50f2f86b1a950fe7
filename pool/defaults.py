"""The program's defaults and fixed limits, which the settings (pool/settings.py), the
arguments (pool/args.py) and the rendering share."""

from decimal import Decimal

from .condor_config import Intervals

# Roles as stack config and HTCondorPoolArgs spell them, in creation order.
ROLES = ("centralManager", "schedd", "worker")

# The official HTCondor images, one per role, pinned to one release of the LTS series 25.0
# (HTCondor's docs/version-history/lts-versions-25-0.rst and feature-versions-26-x.rst:
# 25.0.15, October 22, 2026). Tags are `<version>-el9` (build/docker/services/build-images),
# published for the newest release of each series.
HTCONDOR_IMAGE_TAG = "25.0.15-el9"
DEFAULT_IMAGES = {
    "centralManager": f"htcondor/cm:{HTCONDOR_IMAGE_TAG}",
    "schedd": f"htcondor/submit:{HTCONDOR_IMAGE_TAG}",
    "worker": f"htcondor/execute:{HTCONDOR_IMAGE_TAG}",
}
# CPU, memory and disk (ephemeral storage: HTCondor's local directory, /tmp, its logs) are
# each both the request and the limit (Guaranteed QoS), so a worker's slot can advertise
# exactly what it gets. A worker's disk holds its jobs' sandboxes; the central manager's and
# the schedd's state is on their volumes, so theirs holds only logs and scratch.
DEFAULT_RESOURCES = {
    "centralManager": {"cpu": "500m", "memory": "512Mi", "disk": "1Gi"},
    "schedd": {"cpu": "500m", "memory": "1Gi", "disk": "2Gi"},
    "worker": {"cpu": "1", "memory": "2Gi", "disk": "10Gi"},
}
# The metrics exporter's container (stack config `metrics`): one Python process that holds
# one snapshot of the collector's ads at a time.
METRICS_RESOURCES = {"cpu": "50m", "memory": "128Mi", "disk": "256Mi"}
METRICS_PORT = 9720

# The least each resource may be, and its unit, for every role and worker pool: disk leaves
# room for HTCondor's logs and a job's sandbox.
MIN_DISK_BYTES = 256 * 2**20
RESOURCE_MINIMUMS = {"cpu": (Decimal("0.001"), "CPU"), "memory": (Decimal(64 * 2**20), "bytes"),
                     "disk": (Decimal(MIN_DISK_BYTES), "bytes")}

# A leaving worker's running jobs get its grace period less this long to finish; the rest
# is for ending the ones that do not, handing them back to the queue, and shutting down.
DRAIN_MARGIN_SECONDS = 30
MIN_WORKER_GRACE_SECONDS = 2 * DRAIN_MARGIN_SECONDS

# How the schedd's volume may be attached. ReadWriteOncePod (the default) lets one pod at a
# time mount it, so a replacement schedd starts only once the old one is gone, whatever
# deleted it; ReadWriteOnce is for storage drivers without it (one node at a time only).
SPOOL_ACCESS_MODES = ("ReadWriteOncePod", "ReadWriteOnce")

# How often daemons may be told to advertise, in seconds (updateIntervalSeconds).
UPDATE_INTERVAL_RANGE = (5, 3600)
UPDATE_INTERVAL_SECONDS = Intervals().update

# A burst worker (stack config maxWorkers) leaves after this long without a claim
# (idleShutdownSeconds, HTCondor's STARTD_NOCLAIM_SHUTDOWN): the default, and the bounds.
IDLE_SHUTDOWN_SECONDS = 300
IDLE_SHUTDOWN_RANGE = (10, 86400)
# The autoscaler's container: one Python process holding one snapshot of the idle jobs.
AUTOSCALER_RESOURCES = {"cpu": "100m", "memory": "256Mi", "disk": "256Mi"}
