"""The emulated node, as the scheduler and a device plugin see it: its labels, its taints
(none), and the GPUs it offers as the extended resource nvidia.com/gpu.

No GPU exists on these machines. A container given GPUs sees them as HTCondor's GPU
discovery would on a real GPU node under the NVIDIA device plugin: exactly the devices it
was allocated, here through condor_gpu_discovery's own simulation (`-simulate:MODEL,N`,
passed as GPU_DISCOVERY_EXTRA, which `use FEATURE:GPUs` appends to its command line). What the program generates is untouched: whether
the startd discovers, advertises and assigns them is HTCondor's doing.
"""

from dataclasses import dataclass, field

from pool.quantity import parse_quantity

GPU_RESOURCE = "nvidia.com/gpu"  # the NVIDIA device plugin's resource name
SIMULATED_GPU_MODEL = 4  # condor_gpu_discovery -simulate's device 4: A100-SXM4-40GB


def gpus_asked(container: dict) -> int:
    """A container's nvidia.com/gpu limit (an extended resource: its request is the same)."""
    limit = container.get("resources", {}).get("limits", {}).get(GPU_RESOURCE, 0)
    return int(parse_quantity(str(limit)))


@dataclass
class Node:
    name: str = "podsim"
    gpus: int = 0
    labels: dict = field(default_factory=dict)
    allocated: dict = field(default_factory=dict)  # pod name -> its GPU indices

    def __post_init__(self):
        self.labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", **self.labels}

    def unschedulable(self, pod_name: str, spec: dict, container: dict) -> list[str]:
        """Why the scheduler would leave this pod Pending on this node ([] if it fits).
        Node affinity is not emulated: a pod asking for it is refused outright."""
        reasons = [f"node(s) didn't match Pod's node affinity/selector ({key}={value})"
                   for key, value in spec.get("nodeSelector", {}).items() if self.labels.get(key) != value]
        if "nodeAffinity" in spec.get("affinity", {}):
            raise NotImplementedError("the emulator does not schedule by node affinity; the real cluster does")
        free = self.gpus - sum(len(v) for name, v in self.allocated.items() if name != pod_name)
        if gpus_asked(container) > free:
            reasons.append(f"Insufficient {GPU_RESOURCE} ({gpus_asked(container)} asked, {free} free)")
        return reasons

    def allocate(self, pod_name: str, container: dict) -> dict[str, str]:
        """What the device plugin's Allocate gives the container: its devices, as environment."""
        count = gpus_asked(container)
        if not count:
            return {}
        taken = {i for name, v in self.allocated.items() if name != pod_name for i in v}
        mine = [i for i in range(self.gpus) if i not in taken][:count]
        assert len(mine) == count, f"{pod_name}: {count} GPUs asked, {len(mine)} free"
        self.allocated[pod_name] = mine
        return {"NVIDIA_VISIBLE_DEVICES": ",".join(f"GPU-podsim-{i}" for i in mine),
                "_CONDOR_GPU_DISCOVERY_EXTRA": f"-simulate:{SIMULATED_GPU_MODEL},{count}"}

    def release(self, pod_name: str) -> None:
        self.allocated.pop(pod_name, None)
