"""The pool's NetworkPolicies on the real cluster (tests/kube), enforced there by
kube-router's firewall, through `pulumi up`: who reaches HTCondor's port, and how far a job
reaches out. The emulator's tests of the same policies stay (test_emulated_pool,
test_job_confinement): they are fast and run HTCondor 25 too; these prove the Kubernetes
semantics on a real enforcer.

Every probe target has a listener, and each is reached once where the policy allows it
(or with `networkPolicy: false`), so a "not connected" is the policy's doing, never a
broken probe. kube-router rejects what a policy does not allow, so a blocked connect is
refused, not timed out: "not connected" is what is asserted.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPORTS
from tests.htcondor_jobs import sleeper_submit, submit, wait_completed
from tests.kube.kubectl import KubePod, Kubectl
from tests.kube.pulumi import Project
from tests.kube.topology import API_PORT, API_SERVICE_IP, NODE_IP
from tests.podsim.kubelet import wait_until
from tests.test_kube_walkthrough import local_image_config

NAMESPACE = "netpol"  # the pool's, made by the program
ELSEWHERE = "netpol-elsewhere"  # another namespace, made by the test
COMPONENT = "app.kubernetes.io/component"
CONDOR_PORT, OTHER_PORT, PROBE_PORT = 9618, 9619, 8080
METADATA = "169.254.169.254"  # the cloud's instance metadata address, served on the node here

# Listens on a port, accepting and closing every connection.
LISTEN = ("import socket, sys\n"
          "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          "s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)\n"
          "while True:\n    s.accept()[0].close()\n")
# Tries each HOST:PORT once: connected, or the error's name (ConnectionRefusedError, timeout).
PROBE = ("import socket, sys\n"
         "for target in sys.argv[1:]:\n"
         "    host, port = target.rsplit(':', 1)\n"
         "    try:\n"
         "        socket.create_connection((host, int(port)), timeout=3).close(); result = 'connected'\n"
         "    except OSError as error:\n"
         "        result = type(error).__name__\n"
         "    print(target, result, flush=True)\n")
PROBE_JOB = "#!/usr/bin/python3\n" + PROBE


def probe_pod(name: str, namespace: str, image: str) -> dict:
    """A pod outside the pool that listens on PROBE_PORT and can run PROBE (restricted)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"htcondor-pool.test/probe": name}},
        "spec": {
            "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 0,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 64, "runAsGroup": 64,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": image, "imagePullPolicy": "Never",
                "command": ["python3", "-c", LISTEN, "0.0.0.0", str(PROBE_PORT)],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
            }],
        },
    }


class Net:
    """The stack, its pods and the probe pods, as the tests use them."""

    def __init__(self, project: Project, kubectl: Kubectl, image: str):
        self.project, self.kubectl, self.image = project, kubectl, image
        self.ips: dict[str, str] = {}

    def start_probe_pod(self, name: str, namespace: str) -> None:
        self.kubectl("apply", "-f", "-", stdin=json.dumps(probe_pod(name, namespace, self.image)))
        self.kubectl("-n", namespace, "wait", "--for=condition=Ready", f"pod/{name}", "--timeout=120s",
                     timeout=150)
        self.ips[name] = self.kubectl.json("-n", namespace, "get", "pod", name)["status"]["podIP"]

    def pool_pod(self, role: str) -> str:
        (pod,) = wait_until(lambda: (lambda pods: pods if len(pods) == 1 else None)(
            self.kubectl.pods(NAMESPACE, f"{COMPONENT}={role}")), 180, 1, f"one running {role} pod")
        return pod["metadata"]["name"]

    def pool_ip(self, role: str) -> str:
        return self.kubectl.json("-n", NAMESPACE, "get", "pod", self.pool_pod(role))["status"]["podIP"]

    def probe(self, namespace: str, pod: str, *targets: str) -> dict[str, str]:
        result = self.kubectl("-n", namespace, "exec", pod, "--", "python3", "-c", PROBE, *targets, timeout=90)
        return dict(line.split() for line in result.stdout.splitlines())

    def listen_in_central_manager(self) -> None:
        """A listener on OTHER_PORT in the central manager's pod (which HTCondor never
        opens), for "no other port is reachable" to have something to refuse."""
        pod = self.pool_pod("central-manager")
        self.kubectl("-n", NAMESPACE, "exec", pod, "--", "sh", "-c",
                     f"setsid python3 -c '{LISTEN}' 0.0.0.0 {OTHER_PORT} </dev/null >/dev/null 2>&1 &")
        wait_until(lambda: self.probe(NAMESPACE, pod, f"127.0.0.1:{OTHER_PORT}")[f"127.0.0.1:{OTHER_PORT}"]
                   == "connected", 30, 0.5, "the central manager pod's extra listener")


class MetadataStandIn:
    """A listener at 169.254.169.254:80 on the node (in the cluster's network namespace),
    where a cloud's node serves its instance metadata."""

    def __init__(self, netns: str):
        self.netns = netns
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        subprocess.run(["ip", "-n", self.netns, "addr", "add", f"{METADATA}/32", "dev", "lo"], check=True)
        self.process = subprocess.Popen(["ip", "netns", "exec", self.netns, sys.executable, "-c", LISTEN,
                                         METADATA, "80"], start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=30)
        subprocess.run(["ip", "-n", self.netns, "addr", "del", f"{METADATA}/32", "dev", "lo"],
                       capture_output=True)


@pytest.fixture(scope="module")
def net(kube_cluster):
    cluster, env = kube_cluster
    kubectl = Kubectl(env)
    project = Project.create(cluster.workdir / "projects" / "netpol", env, "dev")
    local_image_config(project, env["HTCONDOR_POOL_TEST_IMAGE"])
    project.config_set("namespace", NAMESPACE)
    stack = Net(project, kubectl, env["HTCONDOR_POOL_TEST_IMAGE"])
    metadata = MetadataStandIn(cluster.netns)
    kubectl("create", "namespace", ELSEWHERE)
    try:
        metadata.start()
        for name in ("outsider", "allowed"):
            stack.start_probe_pod(name, ELSEWHERE)
        project.config_set("allowedCidrs[0]", f"{stack.ips['allowed']}/32", path=True)
        project.up()
        stack.start_probe_pod("stranger", NAMESPACE)  # in the pool's namespace, not the pool's
        stack.listen_in_central_manager()
        yield stack
    finally:
        try:
            project.destroy()
        finally:
            kubectl("delete", "namespace", ELSEWHERE, "--wait=true", "--timeout=120s", timeout=150, check=False)
            metadata.stop()


def not_connected(seen: dict[str, str], *targets: str) -> None:
    for target in targets:
        assert seen[target] != "connected", (target, seen)


def test_only_the_pools_pods_and_allowed_cidrs_reach_htcondors_port_and_nothing_any_other(net):
    cm = net.pool_ip("central-manager")
    condor, other = f"{cm}:{CONDOR_PORT}", f"{cm}:{OTHER_PORT}"
    # The pool's own pods, and a pod at an address allowedCidrs lists, reach 9618 ...
    for role in ("schedd", "worker"):
        seen = net.probe(NAMESPACE, net.pool_pod(role), condor, other)
        assert seen[condor] == "connected", (role, seen)
        not_connected(seen, other)  # ... and no other port
    seen = net.probe(ELSEWHERE, "allowed", condor, other)
    assert seen[condor] == "connected", seen
    not_connected(seen, other)
    # A pod of another namespace, and one in the pool's namespace that is not the pool's,
    # reach neither, though each reaches a pod no policy guards.
    outsider = f"{net.ips['outsider']}:{PROBE_PORT}"
    for namespace, pod in ((ELSEWHERE, "outsider"), (NAMESPACE, "stranger")):
        target = outsider if pod != "outsider" else f"{net.ips['allowed']}:{PROBE_PORT}"
        seen = net.probe(namespace, pod, condor, other, target)
        assert seen[target] == "connected", (pod, seen)
        not_connected(seen, condor, other)
    REPORTS.append(f"real cluster, kube-router: a pod outside the pool connecting to the central "
                   f"manager's 9618: {seen[condor]}")


def probe_from_a_job(net, *targets: str) -> dict[str, str]:
    schedd = KubePod(net.kubectl, NAMESPACE, net.pool_pod("schedd"))
    job = submit(schedd, "netprobe", PROBE_JOB, sleeper_submit(0, tag="netprobe").replace(
        "arguments = 0", f"arguments = {' '.join(targets)}"))
    (row,) = wait_completed(schedd, job, 1, timeout=180)
    assert row[1:3] == ["4", "0"], row  # the pool ran it
    text = schedd.exec(["cat", "/home/submitter/netprobe.out.0"], user="submitter").stdout
    return dict(line.split() for line in text.splitlines())


JOB_TARGETS = (f"{API_SERVICE_IP}:443", f"{NODE_IP}:{API_PORT}", f"{METADATA}:80")


def test_a_job_reaches_the_central_manager_but_not_the_api_server_metadata_or_other_pods(net):
    cm = f"{net.pool_ip('central-manager')}:{CONDOR_PORT}"
    outsider = f"{net.ips['outsider']}:{PROBE_PORT}"
    seen = probe_from_a_job(net, cm, outsider, *JOB_TARGETS)
    assert seen[cm] == "connected", seen
    not_connected(seen, outsider, *JOB_TARGETS)
    # Each is there: a pod no policy guards reaches every one.
    control = net.probe(ELSEWHERE, "allowed", *JOB_TARGETS, outsider)
    assert set(control.values()) == {"connected"}, control


def test_without_network_policy_every_probe_connects(net):
    """`networkPolicy: false`: the same probes all connect, so each refusal above was the
    policy's."""
    net.project.pulumi("config", "rm", "--path", "allowedCidrs")
    net.project.up(networkPolicy="false")
    assert not net.kubectl.json("-n", NAMESPACE, "get", "networkpolicies")["items"]
    net.listen_in_central_manager()  # anew, in case the pod was replaced
    cm = net.pool_ip("central-manager")
    condor, other = f"{cm}:{CONDOR_PORT}", f"{cm}:{OTHER_PORT}"
    for namespace, pod in ((ELSEWHERE, "outsider"), (NAMESPACE, "stranger"), (ELSEWHERE, "allowed")):
        seen = net.probe(namespace, pod, condor, other)
        assert set(seen.values()) == {"connected"}, (pod, seen)
    seen = probe_from_a_job(net, f"{net.ips['outsider']}:{PROBE_PORT}", *JOB_TARGETS)
    assert set(seen.values()) == {"connected"}, seen
