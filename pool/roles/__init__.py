"""The pool's roles, one module and one component each, under the top HTCondorPool
(pool/component.py); docs/architecture.md draws the tree and what flows between them.

- credentials.py: Credentials, the pool password and the roles' tokens, in Secrets;
- network_policies.py: NetworkPolicies, what reaches the pool's pods and what they reach;
- central_manager.py: CentralManager, the collector and negotiator, their Service and volume;
- schedd.py: Schedd, the submit point and its volume;
- worker_pool.py: WorkerPool, one worker pool's Deployment;
- metrics.py: Metrics, the exporter for Prometheus and the Grafana dashboard;
- autoscaler.py: Autoscaler, burst workers for idle jobs.

What they share: shared.py (names, labels, what a pod mounts, the components' base),
pods.py (the daemons' and the client programs' pods), scraping.py (what Prometheus scrapes).
"""

from .autoscaler import Autoscaler, AutoscalerArgs
from .central_manager import CentralManager, CentralManagerArgs
from .credentials import Credentials, CredentialsArgs
from .metrics import Metrics, MetricsArgs
from .network_policies import NetworkPolicies, NetworkPoliciesArgs
from .pods import SpoolSpec
from .schedd import Schedd, ScheddArgs
from .shared import Credential, PoolConfig
from .worker_pool import WorkerPool, WorkerPoolArgs

__all__ = [
    "Autoscaler", "AutoscalerArgs", "CentralManager", "CentralManagerArgs", "Credential", "Credentials",
    "CredentialsArgs", "Metrics", "MetricsArgs", "NetworkPolicies", "NetworkPoliciesArgs", "PoolConfig", "Schedd",
    "ScheddArgs", "SpoolSpec", "WorkerPool", "WorkerPoolArgs",
]
