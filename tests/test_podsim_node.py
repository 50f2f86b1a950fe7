"""The emulated node (tests/podsim/node.py) schedules as kube-scheduler would for what the
program asks: node labels for nodeSelector, nvidia.com/gpu as a countable resource."""

import pytest

from tests.podsim.node import Node


def worker(gpus: int = 0) -> dict:
    return {"resources": {"limits": {"cpu": "1", "nvidia.com/gpu": str(gpus)} if gpus else {"cpu": "1"}}}


def test_a_pod_selecting_labels_the_node_lacks_is_unschedulable():
    node = Node("n", labels={"disk": "ssd"})
    assert node.unschedulable("a", {"nodeSelector": {"disk": "ssd", "kubernetes.io/os": "linux"}}, worker()) == []
    reasons = node.unschedulable("b", {"nodeSelector": {"disk": "hdd"}}, worker())
    assert reasons == ["node(s) didn't match Pod's node affinity/selector (disk=hdd)"]


def test_gpus_are_allocated_once_each_and_freed_with_their_pod():
    node = Node("n", gpus=3)
    assert node.unschedulable("a", {}, worker(2)) == []
    env = node.allocate("a", worker(2))
    assert env == {"NVIDIA_VISIBLE_DEVICES": "GPU-podsim-0,GPU-podsim-1",
                   "_CONDOR_GPU_DISCOVERY_EXTRA": "-simulate:4,2"}
    assert node.unschedulable("b", {}, worker(2)) == ["Insufficient nvidia.com/gpu (2 asked, 1 free)"]
    assert node.allocate("c", worker(1))["NVIDIA_VISIBLE_DEVICES"] == "GPU-podsim-2"
    node.release("a")
    assert node.unschedulable("b", {}, worker(2)) == []
    assert node.allocate("d", worker()) == {}  # no GPU asked: nothing from the device plugin


def test_node_affinity_is_refused_rather_than_ignored():
    with pytest.raises(NotImplementedError, match="node affinity"):
        Node("n").unschedulable("a", {"affinity": {"nodeAffinity": {}}}, worker())
