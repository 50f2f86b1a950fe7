"""The node: every component of the single-node cluster, run as plain processes by this
supervisor, inside the cluster's network namespace and a mount namespace of its own.

cluster.py starts it in the cluster's network namespace and a new mount namespace, as
`python -m tests.kube.node SPEC.json` (never by hand), and it:

1. makes its mounts private: a tmpfs over /run, /var/lib and /var/log, so that what
   containerd, the kubelet and the CNI plugins keep there (shim sockets, CNI caches, pod
   log links) lives and dies with the cluster; /proc/sys/kernel and /proc/sys/vm
   read-only, so nothing in the cluster retunes the host's kernel. The kubelet insists on
   a few host-wide settings (KERNEL_SETTINGS) and would rewrite them: in this namespace
   it reads the values it wants instead, and the host keeps its own;
2. starts etcd, kube-apiserver, the add-ons (tests/kube/addons.py), kube-controller-manager,
   kube-scheduler, containerd (importing the local images), the kubelet, kube-proxy
   (nftables mode), CoreDNS and, once the node is registered, kube-router's firewall
   (NetworkPolicy), each waiting for the one before to be healthy;
3. forwards the host's loopback port it was handed to the API server, so `kubectl` on the
   host needs no route into the namespace;
4. writes `ready` once the node is Ready and cluster DNS answers, then supervises: a
   component that exits is reported in `failed` and the node stops.

SIGTERM stops every component; cluster.py then removes what their containers left.
"""

import asyncio
import json
import random
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import yaml

from . import addons
from .topology import (
    API_PORT, CLUSTER_CIDR, CLUSTER_DNS_IP, CLUSTER_DOMAIN, ETCD_CLIENT, NODE_IP, NODE_NAME, POD_CIDR,
    SERVICE_CIDR,
)

KUBE_ROUTER_HEALTH_PORT = 20244  # its default
PROMETHEUS_PORT = 9090  # its default; on the namespace's loopback, forwarded to the host's
PROMETHEUS_SCRAPE_INTERVAL = "2s"  # quick enough for tests that wait on what it scraped
# The chains its firewall hooks into INPUT, FORWARD and OUTPUT (pkg/controllers/netpol).
KUBE_ROUTER_CHAINS = ("KUBE-ROUTER-INPUT", "KUBE-ROUTER-FORWARD", "KUBE-ROUTER-OUTPUT")
PRIVATE_TMPFS = ("/run", "/var/lib", "/var/log")
READ_ONLY_SYSCTLS = ("/proc/sys/kernel", "/proc/sys/vm")
# What the kubelet's container manager requires of the node's kernel and otherwise writes
# (pkg/kubelet/cm/container_manager_linux.go, setupKernelTunables). All are host-wide.
KERNEL_SETTINGS = {"vm/overcommit_memory": "1", "vm/panic_on_oom": "0", "kernel/panic": "10",
                   "kernel/panic_on_oops": "1", "kernel/keys/root_maxkeys": "1000000",
                   "kernel/keys/root_maxbytes": "25000000"}


def log(message: str) -> None:
    print(f"[node {time.strftime('%H:%M:%S')}] {message}", flush=True)


class ComponentExited(RuntimeError):
    """A component of the node stopped: nothing to wait for any more."""


def wait_until(check, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except ComponentExited:
            raise
        except Exception as exc:  # noqa: BLE001 - retried until the deadline, then reported
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last!r})")


def dns_query(server: str, name: str, timeout: float = 2.0) -> list[str]:
    """The A records `server` returns for `name` (a minimal DNS client, RFC 1035)."""
    ident = random.randrange(1 << 16)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question, (server, 53))
        reply = s.recv(4096)
    _, flags, _, answers, _, _ = struct.unpack(">HHHHHH", reply[:12])
    if flags & 0xF:
        return []
    offset = 12 + len(question)
    addresses = []
    for _ in range(answers):
        while reply[offset] and reply[offset] < 0xC0:  # the owner name (labels or a pointer)
            offset += reply[offset] + 1
        offset += 2 if reply[offset] >= 0xC0 else 1
        rtype, _, _, length = struct.unpack(">HHIH", reply[offset:offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            addresses.append(socket.inet_ntoa(reply[offset:offset + 4]))
        offset += length
    return addresses


class Node:
    def __init__(self, spec: dict):
        self.spec = spec
        self.work = Path(spec["workdir"])
        self.pki = Path(spec["pki"])
        self.bins = spec["binaries"]
        self.logs = self.work / "logs"
        self.processes: dict[str, subprocess.Popen] = {}
        self.stopping = threading.Event()
        self.env = {"PATH": f"{spec['path']}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                    "LANG": "C.UTF-8"}
        self.kubectl = [self.bins["kubectl"], "--kubeconfig", str(self.pki / "admin.kubeconfig")]

    # ---- mounts ------------------------------------------------------------------------
    def private_mounts(self) -> None:
        def mount(*args: str) -> None:
            subprocess.run(["mount", *args], check=True)
        for path in PRIVATE_TMPFS:
            mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", path)
        shown = self.work / "kernel-settings"
        shown.mkdir(parents=True, exist_ok=True)
        for key, value in KERNEL_SETTINGS.items():
            real = Path("/proc/sys") / key
            if real.read_text().strip() != value:
                (shown / key.replace("/", ".")).write_text(f"{value}\n")
                mount("--bind", str(shown / key.replace("/", ".")), str(real))
                mount("-o", "remount,bind,ro", str(real))
        for path in READ_ONLY_SYSCTLS:
            mount("--rbind", path, path)
            mount("-o", "remount,bind,ro", path)
        # As on a normal node, mounts propagate between the kubelet, containerd and pods;
        # this namespace is a slave of the host's (see cluster.py), so nothing goes back.
        subprocess.run(["mount", "--make-rshared", "/"], check=True)

    # ---- processes ---------------------------------------------------------------------
    def start(self, name: str, argv: list[str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        out = open(self.logs / f"{name}.log", "ab")
        log(f"starting {name}")
        self.processes[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, env=self.env, cwd=self.work)

    def check_running(self, name: str) -> None:
        code = self.processes[name].poll()
        if code is not None:
            tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
            raise ComponentExited(f"{name} exited with status {code}:\n{tail}")

    def healthy(self, name: str, check, timeout: float = 120) -> None:
        def ok():
            self.check_running(name)
            return check()
        wait_until(ok, timeout, f"{name} to be healthy")
        log(f"{name} is healthy")

    def https_ok(self, url: str) -> bool:
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        context.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        with urllib.request.urlopen(url, context=context, timeout=5) as reply:
            return reply.status == 200

    def run_kubectl(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run([*self.kubectl, *args], input=stdin, capture_output=True, text=True,
                                env=self.env, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def apply(self, manifests: list[dict]) -> None:
        self.run_kubectl("apply", "--server-side", "-f", "-",
                         stdin=yaml.safe_dump_all(manifests))

    # ---- components --------------------------------------------------------------------
    def start_etcd(self) -> None:
        self.start("etcd", [self.bins["etcd"], "--name", NODE_NAME, "--data-dir", str(self.work / "etcd"),
                            "--listen-client-urls", ETCD_CLIENT, "--advertise-client-urls", ETCD_CLIENT,
                            "--listen-peer-urls", "http://127.0.0.1:2380",
                            "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                            "--initial-cluster", f"{NODE_NAME}=http://127.0.0.1:2380",
                            "--listen-metrics-urls", "http://127.0.0.1:2381",
                            # A test cluster's state is thrown away: no fsync on every write.
                            "--unsafe-no-fsync", "--log-level", "warn"])
        self.healthy("etcd", lambda: urllib.request.urlopen(f"{ETCD_CLIENT}/health", timeout=2).status == 200)

    def start_api_server(self) -> None:
        p = self.pki
        self.start("kube-apiserver", [
            self.bins["kube-apiserver"], f"--advertise-address={NODE_IP}", "--bind-address=0.0.0.0",
            f"--secure-port={API_PORT}", f"--etcd-servers={ETCD_CLIENT}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--client-ca-file={p / 'ca.crt'}",
            f"--tls-cert-file={p / 'kube-apiserver.crt'}", f"--tls-private-key-file={p / 'kube-apiserver.key'}",
            f"--kubelet-client-certificate={p / 'kube-apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={p / 'kube-apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={p / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
            f"--service-account-key-file={p / 'service-accounts.pub'}",
            f"--service-account-signing-key-file={p / 'service-accounts.key'}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            # As kubeadm and managed clusters run it: privileged containers are the
            # admission chain's to refuse (Pod Security, the pool's policies), not the
            # API server's blanket default, so tests see what a real cluster would admit.
            "--allow-privileged=true",
            "--anonymous-auth=false", "--profiling=false"])
        self.healthy("kube-apiserver", lambda: self.https_ok(f"https://127.0.0.1:{API_PORT}/readyz"))

    def apply_addons(self) -> None:
        self.apply([addons.storage_class(), *addons.cluster_dns(), *addons.kube_router_rbac(),
                    *addons.prometheus_rbac()])
        self.recycler = VolumeRecycler(self)
        self.recycler.fill()
        threading.Thread(target=self.recycler.run, name="volume-recycler", daemon=True).start()

    def start_controllers(self) -> None:
        p = self.pki
        kcm = str(p / "kube-controller-manager.kubeconfig")
        self.start("kube-controller-manager", [
            self.bins["kube-controller-manager"], f"--kubeconfig={kcm}",
            f"--authentication-kubeconfig={kcm}", f"--authorization-kubeconfig={kcm}",
            f"--service-account-private-key-file={p / 'service-accounts.key'}",
            f"--root-ca-file={p / 'ca.crt'}", f"--cluster-signing-cert-file={p / 'ca.crt'}",
            f"--cluster-signing-key-file={p / 'ca.key'}", "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--leader-elect=false",
            "--bind-address=127.0.0.1", "--profiling=false"])
        sched = str(p / "kube-scheduler.kubeconfig")
        self.start("kube-scheduler", [
            self.bins["kube-scheduler"], f"--kubeconfig={sched}", f"--authentication-kubeconfig={sched}",
            f"--authorization-kubeconfig={sched}", "--leader-elect=false", "--bind-address=127.0.0.1",
            "--profiling=false"])

    def containerd_config(self) -> Path:
        c = self.work / "containerd"
        cni = self.work / "cni"
        (cni / "net.d").mkdir(parents=True, exist_ok=True)
        (cni / "net.d" / "10-bridge.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0", "name": "htcondor-pool-test",
            "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": True, "hairpinMode": True,
                         "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR}]],
                                  "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(cni / "ipam")}}],
        }, indent=2))
        runtime = "plugins.'io.containerd.cri.v1.runtime'"
        config = f"""\
version = 3
root = '{c / "root"}'
state = '{c / "state"}'

[grpc]
  address = '{self.containerd_socket}'

[plugins.'io.containerd.internal.v1.opt']
  path = '{c / "opt"}'

[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{self.spec["pause_image"]}'

[{runtime}]
  # Pod network namespaces are pinned under the state directory, not in the host's /run/netns.
  netns_mounts_under_state_dir = true
  # These machines withhold CAP_SYS_RESOURCE even from root, so no process may lower its
  # OOM score below containerd's own (the kubelet asks -998 for sandboxes, -997 for
  # Guaranteed pods): they get containerd's score instead of failing to start.
  restrict_oom_score_adj = true
  [{runtime}.containerd]
    default_runtime_name = 'runc'
    [{runtime}.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [{runtime}.containerd.runtimes.runc.options]
        BinaryName = '{self.bins["runc"]}'
        SystemdCgroup = false
  [{runtime}.cni]
    bin_dirs = ['{self.spec["cni_bin_dir"]}']
    conf_dir = '{cni / "net.d"}'
"""
        path = c / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config)
        return path

    @property
    def containerd_socket(self) -> Path:
        return self.work / "containerd" / "containerd.sock"

    def ctr(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run([self.bins["ctr"], "--address", str(self.containerd_socket), "-n", "k8s.io", *args],
                                capture_output=True, text=True, env=self.env, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def start_containerd(self) -> None:
        self.start("containerd", [self.bins["containerd"], "--config", str(self.containerd_config())])
        self.healthy("containerd", lambda: self.ctr("version", timeout=5))
        for archive in self.spec["image_archives"]:
            started = time.monotonic()
            self.ctr("images", "import", "--platform", "linux/amd64", archive, timeout=900)
            log(f"imported {Path(archive).name} in {time.monotonic() - started:.1f}s")

    def start_kubelet(self) -> None:
        p = self.pki
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(p / "ca.crt")}},
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(p / "kubelet-serving.crt"), "tlsPrivateKeyFile": str(p / "kubelet-serving.key"),
            "address": NODE_IP, "readOnlyPort": 0, "healthzBindAddress": "127.0.0.1",
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "cgroupDriver": "cgroupfs", "cgroupRoot": self.spec["cgroup_root"],
            # These machines mount cgroup v1; 1.35 runs on it only when told to.
            "failCgroupV1": False,
            "clusterDomain": CLUSTER_DOMAIN, "clusterDNS": [CLUSTER_DNS_IP],
            "resolvConf": "/etc/resolv.conf",
            "podLogsDir": str(self.work / "pod-logs"),
            "failSwapOn": False,
            # It finds the kernel settings it wants (see private_mounts): nothing to change.
            "protectKernelDefaults": True,
            # A shared test machine: evict only when truly short, and never collect the
            # locally imported images (no registry could give them back).
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "2%",
                             "imagefs.available": "2%", "nodefs.inodesFree": "2%"},
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
        }
        path = self.work / "kubelet-config.yaml"
        path.write_text(yaml.safe_dump(config))
        self.start("kubelet", [
            self.bins["kubelet"], f"--config={path}", f"--kubeconfig={p / 'kubelet.kubeconfig'}",
            f"--hostname-override={NODE_NAME}", f"--node-ip={NODE_IP}",
            f"--root-dir={self.work / 'kubelet'}", "--v=1"])

    def start_kube_proxy(self) -> None:
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "mode": "nftables",
            "clientConnection": {"kubeconfig": str(self.pki / "kube-proxy.kubeconfig")},
            "hostnameOverride": NODE_NAME, "clusterCIDR": CLUSTER_CIDR,
            "bindAddress": NODE_IP,
            "metricsBindAddress": "127.0.0.1:10249", "healthzBindAddress": "127.0.0.1:10256",
            # Zero: leave the kernel's conntrack table size and timeouts alone (host-wide).
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                          "tcpCloseWaitTimeout": "0s"},
        }
        path = self.work / "kube-proxy-config.yaml"
        path.write_text(yaml.safe_dump(config))
        self.start("kube-proxy", [self.bins["kube-proxy"], f"--config={path}"])

    def start_kube_router(self) -> None:
        """NetworkPolicy, enforced as a cluster with kube-router's firewall does: iptables and
        ipset rules in this node's namespace (FORWARD, with physdev for pods on the bridge),
        written from the policies, pods and namespaces it watches. Only the firewall: pod
        routes are the bridge CNI's, Services kube-proxy's."""
        self.start("kube-router", [
            self.bins["kube-router"], f"--kubeconfig={self.pki / 'kube-router.kubeconfig'}",
            "--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
            f"--hostname-override={NODE_NAME}", f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--health-port={KUBE_ROUTER_HEALTH_PORT}", "--metrics-port=0", "--v=1"])

        def chains_exist() -> bool:
            return all(subprocess.run(["iptables", "-t", "filter", "-S", chain], capture_output=True,
                                      env=self.env).returncode == 0 for chain in KUBE_ROUTER_CHAINS)
        self.healthy("kube-router", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{KUBE_ROUTER_HEALTH_PORT}/healthz", timeout=2).status == 200 and chains_exist())

    def start_prometheus(self) -> None:
        """A Prometheus server, as a cluster's monitoring runs one: it finds what to scrape
        through the Kubernetes API (its own identity, read-only) and scrapes pods from the
        node, where a Prometheus pod's traffic would come from its own address."""
        config = self.work / "prometheus.yml"
        config.write_text(yaml.safe_dump(addons.prometheus_config(self.pki / "prometheus.kubeconfig",
                                                                  PROMETHEUS_SCRAPE_INTERVAL)))
        self.start("prometheus", [
            self.bins["prometheus"], f"--config.file={config}", f"--storage.tsdb.path={self.work / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}", "--storage.tsdb.retention.time=1d",
            "--log.level=warn"])
        self.healthy("prometheus", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready", timeout=2).status == 200)

    def start_coredns(self) -> None:
        corefile = self.work / "Corefile"
        corefile.write_text(addons.corefile(self.pki / "coredns.kubeconfig"))
        self.start("coredns", [self.bins["coredns"], "-conf", str(corefile)])

    def node_ready(self) -> bool:
        node = json.loads(self.run_kubectl("get", "node", NODE_NAME, "-o", "json"))
        return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])

    def dns_answers(self) -> bool:
        # Through the kube-dns Service (kube-proxy's rules) to CoreDNS (the kubernetes plugin).
        return dns_query(CLUSTER_DNS_IP, f"kubernetes.default.svc.{CLUSTER_DOMAIN}") == [
            self.spec["api_service_ip"]]

    # ---- the API forward for the host --------------------------------------------------
    async def forward(self, listener: socket.socket, port: int = API_PORT) -> None:
        async def pump(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        async def handle(client_reader, client_writer):
            try:
                api_reader, api_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                client_writer.close()
                return
            await asyncio.gather(pump(client_reader, api_writer), pump(api_reader, client_writer))

        server = await asyncio.start_server(handle, sock=listener)
        async with server:
            await server.serve_forever()

    # ---- the whole node ----------------------------------------------------------------
    def run(self) -> None:
        self.private_mounts()
        listener = socket.socket(fileno=self.spec["api_listener_fd"])
        threading.Thread(target=lambda: asyncio.run(self.forward(listener)), name="api-forward",
                         daemon=True).start()
        prometheus = socket.socket(fileno=self.spec["prometheus_listener_fd"])
        threading.Thread(target=lambda: asyncio.run(self.forward(prometheus, PROMETHEUS_PORT)),
                         name="prometheus-forward", daemon=True).start()
        started = time.monotonic()
        self.start_etcd()
        self.start_api_server()
        self.apply_addons()
        self.start_controllers()
        self.start_containerd()
        self.start_kubelet()
        self.start_kube_proxy()
        self.start_coredns()
        wait_until(lambda: all(self.check_running(n) is None for n in self.processes) and self.node_ready(),
                   180, "the node to be Ready")
        self.start_kube_router()  # it reads its Node object, which the kubelet registers
        self.start_prometheus()
        wait_until(self.dns_answers, 120, "cluster DNS to answer through the kube-dns Service")
        (self.work / "ready").write_text(f"{time.monotonic() - started:.1f}\n")
        log(f"node ready in {time.monotonic() - started:.1f}s")
        while not self.stopping.wait(1):
            for name in self.processes:
                self.check_running(name)

    def stop(self) -> None:
        self.stopping.set()
        for name, process in reversed(list(self.processes.items())):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()


class VolumeRecycler:
    """The cluster's storage driver, as a static provisioner: a local volume per entry of
    addons.volume_names(), and a released one (its claim deleted) wiped and made anew."""

    def __init__(self, node: Node):
        self.node = node
        self.root = node.work / "volumes"

    def make(self, name: str, mode: str) -> dict:
        directory = self.root / name
        subprocess.run(["rm", "-rf", "--one-file-system", str(directory)], check=True)
        directory.mkdir(parents=True)
        return addons.volume(name, mode, directory)

    def fill(self) -> None:
        self.node.apply([self.make(name, mode) for name, mode in addons.volume_names()])

    def run(self) -> None:
        modes = dict(addons.volume_names())
        while not self.node.stopping.wait(2):
            try:
                volumes = json.loads(self.node.run_kubectl(
                    "get", "pv", "-l", "htcondor-pool.test/local-volume", "-o", "json"))["items"]
                for pv in volumes:
                    if pv.get("status", {}).get("phase") in ("Released", "Failed"):
                        name = pv["metadata"]["name"]
                        self.node.run_kubectl("delete", "pv", name, "--wait=true")
                        self.node.apply([self.make(name, modes[name])])
                        log(f"volume {name} released: wiped and made available again")
            except Exception as exc:  # noqa: BLE001 - the next round retries
                log(f"volume recycler: {exc}")


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    node = Node(spec)

    def on_signal(*_):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        node.run()
    except BaseException as exc:
        if not isinstance(exc, SystemExit):
            (node.work / "failed").write_text(f"{exc}\n")
            log(f"failed: {exc}")
        raise
    finally:
        node.stop()


if __name__ == "__main__":
    main()
