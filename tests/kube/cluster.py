"""A real single-node Kubernetes cluster, started as root and torn down completely.

Everything of the cluster lives in namespaces and a cgroup of its own: its network
namespace (`htcondor-kube-NAME`: the node's address, the pod bridge, kube-proxy's rules),
the node supervisor's mount namespace (tests/kube/node.py), and the cgroup
tests/kube/cgroups.py makes. The host keeps only its work directory
(/var/tmp/htcondor-pool-kube/NAME) and, for `kubectl` and `pulumi`, a loopback port that the
supervisor forwards to the API server. `down` kills the cgroup's processes (pods included),
whose exit frees every mount, then removes the cgroup, the namespace and the directory.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.podsim.rootfs import PrerequisiteError

from . import build, cgroups, images, pki, pulumi
from .addons import KUBE_ROUTER_USER, PROMETHEUS_USER
from .pki import Identity
from .topology import API_PORT, API_SERVICE_IP, CLUSTER_DOMAIN, NODE_GATEWAY, NODE_IP, NODE_NAME, NODE_PREFIX

RUN_ROOT = Path("/var/tmp/htcondor-pool-kube")
HOST_PACKAGES = {"ip": "iproute2", "nft": "nftables", "nsenter": "util-linux", "unshare": "util-linux"}
UP_TIMEOUT = 600  # seconds from starting the node to Ready with DNS (image import included)
DOWN_TIMEOUT = 60


def netns_name(name: str) -> str:
    return f"htcondor-kube-{name}"


def identities() -> list[Identity]:
    api_names = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 f"kubernetes.default.svc.{CLUSTER_DOMAIN}", "localhost", "127.0.0.1", NODE_IP, API_SERVICE_IP)
    return [
        Identity("kube-apiserver", "kube-apiserver", server_names=api_names, client=False),
        Identity("kube-apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)),
        Identity("admin", "htcondor-pool-test-admin", ("system:masters",)),
        Identity("kube-controller-manager", "system:kube-controller-manager"),
        Identity("kube-scheduler", "system:kube-scheduler"),
        Identity("kubelet", f"system:node:{NODE_NAME}", ("system:nodes",)),
        Identity("kubelet-serving", f"system:node:{NODE_NAME}", server_names=(NODE_NAME, NODE_IP), client=False),
        Identity("kube-proxy", "system:kube-proxy"),
        Identity("coredns", "system:coredns"),
        Identity("kube-router", KUBE_ROUTER_USER),
        Identity("prometheus", PROMETHEUS_USER),
    ]


@dataclass
class State:
    """What `down` and `env` need to find a running cluster again."""
    name: str
    node_pid: int
    api_port: int
    cgroup: str
    cgroups_made: list[str]
    image: str
    path: str
    prometheus_port: int

    @classmethod
    def load(cls, workdir: Path) -> "State | None":
        try:
            return cls(**json.loads((workdir / "state.json").read_text()))
        except FileNotFoundError:
            return None


class Cluster:
    def __init__(self, name: str = "kube"):
        self.name = name
        self.workdir = RUN_ROOT / name
        self.netns = netns_name(name)
        self.cgroup = cgroups.cluster_path(name)

    # ---- what a user of the cluster needs --------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def state(self) -> State | None:
        return State.load(self.workdir)

    def env(self) -> dict[str, str]:
        """The environment for `kubectl` (and the Pulumi CLI) against this cluster."""
        state = self.state()
        if state is None:
            raise PrerequisiteError(f"no cluster {self.name!r} is up; start one with `python -m tests.kube up`")
        pulumi_home = self.workdir / "pulumi"
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{state.path}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PULUMI_HOME": str(pulumi_home / "home"),
            "PULUMI_BACKEND_URL": f"file://{pulumi_home / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": "htcondor-pool-test",
            # Never download anything: no update check, no plugin acquisition.
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "HTCONDOR_POOL_TEST_IMAGE": state.image,
            # The cluster's Prometheus server (tests/kube/node.py), forwarded to this host.
            "HTCONDOR_POOL_TEST_PROMETHEUS": f"http://127.0.0.1:{state.prometheus_port}",
        }

    # ---- up ----------------------------------------------------------------------------
    def up(self, timeout: float = UP_TIMEOUT) -> State:
        if os.geteuid() != 0:
            raise PrerequisiteError("the real cluster needs root (namespaces, mounts, cgroups)")
        if self.leftovers():
            raise PrerequisiteError(f"cluster {self.name!r} is up or was not torn down "
                                    f"({', '.join(self.leftovers())}); run `python -m tests.kube down`")
        missing = sorted({p for tool, p in HOST_PACKAGES.items() if not shutil.which(tool)})
        if missing:
            build.apt_install(missing)
        binaries = build.build_all()
        pins = build.versions()
        image = images.htcondor_image()
        pause = images.pause_image(binaries["pause"], pins["pause"]["image"])
        try:
            state = self._start(binaries, [pause, image], timeout)
            # The providers `pulumi` uses against this cluster, where it finds them without
            # a warning or a download: the cluster's PULUMI_HOME.
            pulumi.install_providers(binaries.providers(), {**os.environ, **self.env()})
            return state
        except BaseException:
            self.down()
            raise

    def _start(self, binaries: build.Binaries, to_import: list[images.Image], timeout: float) -> State:
        self.workdir.mkdir(parents=True)
        for directory in ("home", "state"):  # PULUMI_HOME and the file backend of env()
            (self.workdir / "pulumi" / directory).mkdir(parents=True)
        self._create_network()
        made = cgroups.create(self.cgroup)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        prometheus = socket.socket()
        prometheus.bind(("127.0.0.1", 0))
        prometheus.listen(64)
        credentials = pki.create(self.workdir / "pki", identities(), f"https://127.0.0.1:{API_PORT}")
        pki.write_kubeconfig(self.kubeconfig, f"https://127.0.0.1:{port}", credentials.ca_cert,
                             credentials.path("admin", "crt"), credentials.path("admin", "key"),
                             "htcondor-pool-test-admin")
        programs = {program: binaries[program] for program in (
            "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
            "kube-proxy", "kubectl", "containerd", "ctr", "runc", "coredns", "kube-router", "prometheus")}
        spec = {"workdir": str(self.workdir), "pki": str(credentials.directory), "binaries": programs,
                "path": binaries.path, "cni_bin_dir": str(binaries.cni_bin_dir),
                "cgroup_root": self.cgroup, "pause_image": to_import[0].name,
                "image_archives": [str(i.archive) for i in to_import],
                "api_service_ip": API_SERVICE_IP, "api_listener_fd": listener.fileno(),
                "prometheus_listener_fd": prometheus.fileno()}
        (self.workdir / "node.json").write_text(json.dumps(spec, indent=2))
        log = open(self.workdir / "node.log", "ab")
        cgroup = self.cgroup
        # Into the cluster's network namespace, and a new mount namespace that host mounts
        # propagate into and none propagate out of. (`ip netns exec` would also remount /sys,
        # hiding the cgroup hierarchies the kubelet needs.)
        node = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", "--", "unshare", "--mount", "--propagation", "slave",
             "--", sys.executable, "-m", "tests.kube.node", str(self.workdir / "node.json")],
            cwd=Path(__file__).resolve().parents[2], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            pass_fds=[listener.fileno(), prometheus.fileno()], start_new_session=True,
            preexec_fn=lambda: cgroups.join(cgroup))
        listener.close()
        prometheus_port = prometheus.getsockname()[1]
        prometheus.close()
        # kubectl, and the Pulumi CLI with its language host, first on the users' PATH.
        user_path = os.pathsep.join(str(Path(binaries[p]).parent) for p in ("kubectl", "pulumi"))
        state = State(self.name, node.pid, port, self.cgroup, [str(d) for d in made],
                      to_import[1].name, user_path, prometheus_port)
        (self.workdir / "state.json").write_text(json.dumps(state.__dict__, indent=2))
        deadline = time.monotonic() + timeout
        while not (self.workdir / "ready").exists():
            if (self.workdir / "failed").exists() or node.poll() is not None:
                raise RuntimeError(f"the node failed to start:\n{self.tail('node.log', 60)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the node was not ready after {timeout:.0f}s:\n{self.tail('node.log', 60)}")
            time.sleep(0.5)
        return state

    def _create_network(self) -> None:
        def ip(*args: str) -> None:
            subprocess.run(["ip", *args], check=True, capture_output=True)
        ip("netns", "add", self.netns)
        ip("-n", self.netns, "link", "set", "lo", "up")
        # The node's network card: one end of a veth pair whose other end leads nowhere
        # (these kernels have no dummy interface). Its default route is what a node has:
        # traffic to a Service leaves by it, once kube-proxy's rules have turned it to a pod.
        ip("-n", self.netns, "link", "add", "node0", "type", "veth", "peer", "name", "uplink0")
        ip("-n", self.netns, "addr", "add", f"{NODE_IP}/{NODE_PREFIX}", "dev", "node0")
        for link in ("node0", "uplink0"):
            ip("-n", self.netns, "link", "set", link, "up")
        ip("-n", self.netns, "route", "add", "default", "via", NODE_GATEWAY)
        # The node routes between its pods and Services, and sees bridged pod-to-pod traffic
        # in netfilter (br_netfilter), so kube-proxy's DNAT is undone on replies.
        for key, value in (("net.ipv4.ip_forward", "1"), ("net.bridge.bridge-nf-call-iptables", "1")):
            subprocess.run(["ip", "netns", "exec", self.netns, "sysctl", "-qw", f"{key}={value}"], check=True)

    # ---- down --------------------------------------------------------------------------
    def leftovers(self) -> list[str]:
        found = []
        if self.workdir.exists():
            found.append(str(self.workdir))
        if self.netns in _netns_list():
            found.append(f"network namespace {self.netns}")
        if cgroups.processes(self.cgroup):
            found.append(f"processes in cgroup {self.cgroup}")
        return found

    def down(self, timeout: float = DOWN_TIMEOUT) -> None:
        """Stop and remove everything of the cluster; safe to repeat, and after a crash."""
        state = self.state()
        if state is not None:
            try:
                os.killpg(state.node_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 20
            while _alive(state.node_pid) and time.monotonic() < deadline:
                time.sleep(0.2)
        # Pods, shims and whatever a component left: their exit frees the node's mount
        # namespace and every mount in it (overlays, volumes, pinned pod namespaces).
        cgroups.kill_all(self.cgroup, timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                cgroups.remove(self.cgroup, [Path(p) for p in (state.cgroups_made if state else [])])
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        if self.netns in _netns_list():
            subprocess.run(["ip", "netns", "del", self.netns], check=True)
        if self.workdir.exists():
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.workdir)], check=True)

    def tail(self, log: str, lines: int = 40) -> str:
        path = self.workdir / log if "/" not in log else Path(log)
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return f"({path} does not exist)"

    def component_logs(self, lines: int = 30) -> str:
        """The tail of every component's log, for a failed test's report."""
        logs = sorted((self.workdir / "logs").glob("*.log")) if (self.workdir / "logs").exists() else []
        return "\n".join(f"===== {log.stem}\n{self.tail(str(log), lines)}" for log in logs)


def _netns_list() -> list[str]:
    result = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False  # our own child, now reaped
    except ChildProcessError:
        pass  # another process's child (the `up` that started it has exited)
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
