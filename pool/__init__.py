"""An HTCondor pool on Kubernetes, as a Pulumi component."""

from .args import HTCondorPoolArgs, RoleSpec
from .component import HTCondorPool
from .errors import PoolConfigError

__all__ = ["HTCondorPool", "HTCondorPoolArgs", "PoolConfigError", "RoleSpec"]
