"""The emulated cluster network. Nothing touches the host's network namespace:

- `<prefix>net` holds a bridge (the pod network's gateway, 10.244.0.1/16);
- each pod gets a namespace `<prefix><pod>`, a veth pair created inside `<prefix>net`
  whose pod end moves into the pod's namespace as eth0, and an IP of its own;
- a Service is a stable virtual IP (10.96.0.0/12). As kube-proxy does on each node, every
  pod's namespace has nftables rules that DNAT new connections to the VIP to the current
  ready endpoint, or reject them while there is none. Established connections stay with
  their endpoint through conntrack, so they see it close when it goes.
- NetworkPolicies, as a CNI enforces them: a pod that an ingress policy selects gets an
  input chain, one that an egress policy selects an output chain, each accepting replies,
  loopback and what the policies allow (after a Service's DNAT: pod addresses), and
  dropping the rest.
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

    def add_pod(self, name: str, subnet: int | None = None, address: str | None = None) -> tuple[str, str]:
        """A namespace and IP for a pod (in 10.244.`subnet`.0/24 if given, for hosts outside
        the pool; or at `address` anywhere else, routed beside the pod network, for hosts such
        as a stand-in for the cloud's instance metadata); returns (netns, ip). IPs are never
        reused."""
        netns = f"{self.prefix}{name}"
        if address is not None:
            return self._add_routed_host(netns, address)
        if subnet is None:
            address = str(POD_NETWORK.network_address + self._next_host)
        else:
            assert subnet in OUTSIDE_SUBNETS, subnet
            address = str(POD_NETWORK.network_address + subnet * 256 + self._next_host % 250 + 2)
        veth = self._add_namespace_and_link(netns)
        ip("-n", self.bridge_ns, "link", "set", veth, "master", "br0", "up")
        ip("-n", netns, "addr", "add", f"{address}/{POD_NETWORK.prefixlen}", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "link", "set", "lo", "up")
        ip("-n", netns, "route", "add", "default", "via", GATEWAY)
        self._write_service_rules(netns)
        return netns, address

    def _add_routed_host(self, netns: str, address: str) -> tuple[str, str]:
        """A host at `address`/32 behind its own link from the pod network's gateway, which
        routes to it and answers for the pod network on its side (proxy ARP)."""
        veth = self._add_namespace_and_link(netns)
        ip("-n", self.bridge_ns, "link", "set", veth, "up")
        for key in ("net.ipv4.ip_forward", f"net.ipv4.conf.{veth}.proxy_arp"):
            subprocess.run(["ip", "netns", "exec", self.bridge_ns, "sysctl", "-qw", f"{key}=1"], check=True)
        ip("-n", self.bridge_ns, "route", "add", f"{address}/32", "dev", veth)
        ip("-n", netns, "addr", "add", f"{address}/32", "dev", "eth0")
        for link in ("eth0", "lo"):
            ip("-n", netns, "link", "set", link, "up")
        ip("-n", netns, "route", "add", str(POD_NETWORK), "dev", "eth0")
        self._write_service_rules(netns)
        return netns, address

    def _add_namespace_and_link(self, netns: str) -> str:
        """A new network namespace with `eth0`, the end of a veth pair whose other end (the
        name returned) stays in the bridge's namespace."""
        veth = f"veth{self._next_host}"
        self._next_host += 1
        ip("netns", "add", netns)
        with self._lock:
            self.pod_namespaces.append(netns)
        ip("-n", self.bridge_ns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        return veth

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

    def set_ingress(self, netns: str, allowed: list | None) -> None:
        """A pod's ingress as its NetworkPolicies allow it: None when no policy selects it
        (everything allowed), else (sources or None for any, ports or None for all) rules."""
        self._set_policy(netns, "input", "saddr", allowed)

    def set_egress(self, netns: str, allowed: list | None) -> None:
        """The same for a pod's egress: (destinations or None for any, ports or None) rules."""
        self._set_policy(netns, "output", "daddr", allowed)

    def _set_policy(self, netns: str, chain: str, field: str, allowed: list | None) -> None:
        # Peers are addresses or CIDRs, or (cidr, [except, ...]) for an ipBlock with
        # exceptions; IPv6 ones match IPv6 packets only.
        lines = ["    ct state established,related accept", f"    {'iif' if chain == 'input' else 'oif'} lo accept"]
        for peers, ports in allowed or []:
            if peers == []:
                continue  # a selector that matches no pod yet
            matches = [""] if peers is None else [_peer_match(field, peer) for peer in peers]
            for match in matches:
                for protocol, port in ports or [(None, None)]:
                    lines.append(f"    {match}{f'{protocol.lower()} dport {port} ' if port else ''}accept")
        body = "\n".join(lines + ["    drop"]) if allowed is not None else ""
        with self._lock:
            if netns not in self.pod_namespaces:
                return  # the pod is being removed
            table = f"podsim_{chain}_policy"
            # After the Services' DNAT (-100), so the policy sees the endpoint, as a CNI's
            # does; before their reject of a Service without endpoints (0): a CNI's policy
            # drops a packet to such a Service's address before kube-proxy could refuse it.
            nft(netns, f"table inet {table}\ndelete table inet {table}\n"
                       f"table inet {table} {{\n  chain {chain} {{\n    type filter hook {chain} priority -10;\n"
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


def _peer_match(field: str, peer) -> str:
    cidr, excepts = peer if isinstance(peer, tuple) else (peer, [])
    family = "ip6" if ":" in cidr else "ip"
    match = f"{family} {field} {cidr} "
    if excepts:
        match += f"{family} {field} != {{ {', '.join(excepts)} }} "
    return match


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
