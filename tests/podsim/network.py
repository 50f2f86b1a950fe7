"""The emulated cluster network. Nothing touches the host's network namespace:

- `<prefix>net` holds a bridge (the pod network's gateway, 10.244.0.1/16);
- each pod gets a namespace `<prefix><pod>`, a veth pair created inside `<prefix>net`
  whose pod end moves into the pod's namespace as eth0, and an IP of its own;
- a Service is a stable virtual IP (10.96.0.0/12). As kube-proxy does on each node, every
  pod's namespace has nftables rules that DNAT new connections to the VIP to the current
  ready endpoint, or reject them while there is none. Established connections stay with
  their endpoint through conntrack, so they see it close when it goes.
- NetworkPolicies, as a CNI enforces them: a pod that a policy selects gets an input chain
  that accepts replies, loopback and what the policies allow, and drops the rest.
"""

import ipaddress
import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field

POD_NETWORK = ipaddress.ip_network("10.244.0.0/16")
SERVICE_NETWORK = ipaddress.ip_network("10.96.0.0/12")
GATEWAY = "10.244.0.1"
# Hosts outside the pool (see Cluster.run_host) get addresses in their own /24s, so a test
# can name them in a NetworkPolicy's ipBlock.
OUTSIDE_SUBNETS = range(200, 250)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def nft(netns: str, script: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=script, check=True,
                   capture_output=True, text=True)


@dataclass
class Service:
    name: str
    vip: str
    ports: list  # [(protocol, port, target port: a number or a container port's name)]
    endpoint: str | None = None  # IP of the ready pod behind it
    named_ports: dict = field(default_factory=dict)  # the endpoint's container ports by name


class Network:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.bridge_ns = f"{prefix}net"
        self.pod_namespaces: list[str] = []
        self.services: dict[str, Service] = {}
        self._next_host = 2
        self._next_vip = 10
        # Rule writes and a pod's removal from pod_namespaces are serialised, so no nft runs
        # in a namespace whose processes remove_namespace is killing.
        self._lock = threading.RLock()

    def create(self) -> None:
        ip("netns", "add", self.bridge_ns)
        ip("-n", self.bridge_ns, "link", "set", "lo", "up")
        ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        ip("-n", self.bridge_ns, "addr", "add", f"{GATEWAY}/{POD_NETWORK.prefixlen}", "dev", "br0")
        ip("-n", self.bridge_ns, "link", "set", "br0", "up")

    def add_pod(self, name: str, subnet: int | None = None) -> tuple[str, str]:
        """A namespace and IP for a pod (in 10.244.`subnet`.0/24 if given, for hosts outside
        the pool); returns (netns, ip). IPs are never reused."""
        netns = f"{self.prefix}{name}"
        if subnet is None:
            address = str(POD_NETWORK.network_address + self._next_host)
        else:
            assert subnet in OUTSIDE_SUBNETS, subnet
            address = str(POD_NETWORK.network_address + subnet * 256 + self._next_host % 250 + 2)
        veth = f"veth{self._next_host}"
        self._next_host += 1
        ip("netns", "add", netns)
        with self._lock:
            self.pod_namespaces.append(netns)
        ip("-n", self.bridge_ns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        ip("-n", self.bridge_ns, "link", "set", veth, "master", "br0", "up")
        ip("-n", netns, "addr", "add", f"{address}/{POD_NETWORK.prefixlen}", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "link", "set", "lo", "up")
        ip("-n", netns, "route", "add", "default", "via", GATEWAY)
        self._write_service_rules(netns)
        return netns, address

    def remove_pod(self, netns: str) -> None:
        with self._lock:
            if netns in self.pod_namespaces:
                self.pod_namespaces.remove(netns)
        remove_namespace(netns)

    def add_service(self, name: str, ports: list) -> Service:
        vip = str(SERVICE_NETWORK.network_address + self._next_vip)
        self._next_vip += 1
        self.services[name] = Service(name, vip, ports)
        self._sync_rules()
        return self.services[name]

    def set_endpoint(self, name: str, address: str | None, named_ports: dict) -> None:
        service = self.services[name]
        if (service.endpoint, service.named_ports) != (address, named_ports):
            service.endpoint, service.named_ports = address, named_ports
            self._sync_rules()

    def _rules(self) -> str:
        nat, reject = [], []
        for svc in self.services.values():
            for protocol, port, target in svc.ports:
                match = f"ip daddr {svc.vip} {protocol.lower()} dport {port}"
                target = svc.named_ports.get(target, target)
                if svc.endpoint and isinstance(target, int):
                    nat.append(f"    {match} dnat to {svc.endpoint}:{target}")
                else:
                    reject.append(f"    {match} reject")
        return ("table ip podsim_services\ndelete table ip podsim_services\n"
                "table ip podsim_services {\n"
                "  chain output_nat {\n    type nat hook output priority -100;\n" + "\n".join(nat) + "\n  }\n"
                "  chain output_filter {\n    type filter hook output priority 0;\n"
                # As kube-proxy's: the Service rules apply to new connections only; an
                # established one stays with its endpoint through conntrack. The rule also
                # keeps conntrack on in the namespace while no DNAT rule exists: without it
                # the kernel stops tracking, and a departing endpoint's FIN would no longer
                # be translated back to the Service address and would never reach its socket.
                "    ct state established,related accept\n" + "\n".join(reject) + "\n  }\n"
                "}\n")

    def set_ingress(self, netns: str, allowed: list[tuple[list[str] | None, list[tuple[str, int]] | None]] | None) -> None:
        """A pod's ingress as its NetworkPolicies allow it: None when no policy selects it
        (everything allowed), else (sources or None for any, ports or None for all) rules."""
        lines = ["    ct state established,related accept", "    iif lo accept"]
        for sources, ports in allowed or []:
            if sources == []:
                continue  # a selector that matches no pod yet
            match = f"ip saddr {{ {', '.join(sources)} }} " if sources else ""
            for protocol, port in ports or [(None, None)]:
                lines.append(f"    {match}{f'{protocol.lower()} dport {port} ' if port else ''}accept")
        body = "\n".join(lines + ["    drop"]) if allowed is not None else ""
        with self._lock:
            if netns not in self.pod_namespaces:
                return  # the pod is being removed
            nft(netns, "table inet podsim_policy\ndelete table inet podsim_policy\n"
                       "table inet podsim_policy {\n  chain input {\n    type filter hook input priority 0;\n"
                       f"{body}\n  }}\n}}\n")

    def _write_service_rules(self, netns: str) -> None:
        nft(netns, self._rules())

    def _sync_rules(self) -> None:
        with self._lock:
            for netns in self.pod_namespaces:
                self._write_service_rules(netns)

    def destroy(self) -> None:
        for netns in list(self.pod_namespaces):
            self.remove_pod(netns)
        ip("netns", "del", self.bridge_ns, check=False)


def remove_namespace(netns: str) -> None:
    """Delete a pod's namespace (its veth pair goes with it). Whatever still runs there (a
    pod stopped mid-start, a daemon that died) is killed first."""
    for pid in ip("netns", "pids", netns, check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass  # gone with its PID namespace's init, killed just before
    ip("netns", "del", netns, check=False)


def leftover_namespaces(prefix: str) -> list[str]:
    listing = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in listing.splitlines() if line.startswith(prefix)]
