"""NetworkPolicies (stack config `networkPolicy`): what reaches the pool's pods, and what
they reach. NAME-ingress admits only HTCondor's port, from the pool's own pods and
`allowedCidrs`; NAME-egress lets every pod of the pool reach HTCondor's port and DNS, and
nothing else; NAME-worker-egress lets jobs on the workers, of every worker pool, also reach
`workerEgressCidrs`. The exporter's and the autoscaler's own policies are theirs (Metrics,
Autoscaler). The pool's pods wait for these, so no pod is ever reachable from outside the
pool, or reaches beyond it, from its first packet."""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from ..condor_config import CONDOR_PORT
from ..validation import egress_except
from .shared import Role, component, labels, pool_selector


def network_policy(instance: str, namespace_name, allowed_cidrs: tuple[str, ...]) -> dict:
    """Ingress to the pool's pods: HTCondor's port, from the pool's own pods and from the
    allowed CIDRs (outside submit hosts or workers). Nothing else reaches them, no other
    port either (exec probes do not use the network)."""
    sources = [{"podSelector": {"matchLabels": pool_selector(instance)}}]
    sources += [{"ipBlock": {"cidr": cidr}} for cidr in allowed_cidrs]
    return {
        "metadata": {"name": f"{instance}-ingress", "namespace": namespace_name, "labels": labels(instance)},
        "spec": {
            "podSelector": {"matchLabels": pool_selector(instance)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": CONDOR_PORT}]}],
        },
    }


DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def egress_policy(instance: str, namespace_name) -> dict:
    """Egress of the pool's pods, daemons and jobs alike: HTCondor's port, and DNS (to any
    server: a cluster's DNS may be a Service, a node-local cache or the node itself).
    HTCondor's port to any address, not only the pool's pods and allowedCidrs: a policy
    cannot name the central manager's Service, and while that Service has no endpoint (the
    central manager being replaced) a CNI checks the packet against the policy with the
    Service's own address. Dropped there, every daemon's connect to the collector would
    hang until its timeout, and a schedd so blocked stops serving its running jobs;
    allowed, kube-proxy refuses it at once. Nothing else goes out: not the Kubernetes API
    server, not other namespaces' services, not the cloud's instance metadata."""
    return {
        "metadata": {"name": f"{instance}-egress", "namespace": namespace_name, "labels": labels(instance)},
        "spec": {
            "podSelector": {"matchLabels": pool_selector(instance)},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"protocol": "TCP", "port": CONDOR_PORT}]}, {"ports": DNS_PORTS}],
        },
    }


def worker_egress_policy(instance: str, namespace_name, pools: list[str], egress_cidrs: tuple[str, ...]) -> dict:
    """What jobs on the workers (of every worker pool) may reach besides the pool, on any
    port: the egress CIDRs, less the link-local and private ranges inside each
    (pool/validation.py)."""
    blocks = []
    for cidr in egress_cidrs:
        block = {"cidr": cidr}
        if except_ := egress_except(cidr):
            block["except"] = except_
        blocks.append({"ipBlock": block})
    components = sorted(component("worker", pool) for pool in pools)
    return {
        "metadata": {"name": f"{instance}-worker-egress", "namespace": namespace_name, "labels": labels(instance)},
        "spec": {
            "podSelector": {"matchLabels": pool_selector(instance), "matchExpressions": [
                {"key": "app.kubernetes.io/component", "operator": "In", "values": components}]},
            "policyTypes": ["Egress"],
            "egress": [{"to": blocks}] if blocks else [],
        },
    }



@dataclass(frozen=True)
class NetworkPoliciesArgs:
    instance: str  # the pool's name: the policies select its pods by it
    namespace: pulumi.Input[str]
    # Outside the pool, what may reach HTCondor's port (outside submit hosts or workers).
    allowed_cidrs: tuple[str, ...]
    # The worker pools (by name) whose jobs may reach `worker_egress_cidrs`, any port.
    worker_pools: list[str]
    worker_egress_cidrs: tuple[str, ...]


class NetworkPolicies(Role):
    """NAME-ingress, NAME-egress and NAME-worker-egress."""

    # Every policy, for the pods to wait for.
    policies: list[k8s.networking.v1.NetworkPolicy]

    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("NetworkPolicies", name, opts)
        instance, namespace = args.instance, args.namespace
        self.policies = [
            k8s.networking.v1.NetworkPolicy(f"{instance}-ingress", opts=self.object_options(),
                                            **network_policy(instance, namespace, args.allowed_cidrs)),
            k8s.networking.v1.NetworkPolicy(f"{instance}-egress", opts=self.object_options(),
                                            **egress_policy(instance, namespace)),
            k8s.networking.v1.NetworkPolicy(f"{instance}-worker-egress", opts=self.object_options(),
                                            **worker_egress_policy(instance, namespace, args.worker_pools,
                                                                   args.worker_egress_cidrs)),
        ]
        self.register_outputs({})
