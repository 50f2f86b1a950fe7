"""The emulator itself behaves like the Kubernetes it stands in for, so that what the
HTCondor tests observe is what a cluster would show."""

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import require_emulator
from tests.podsim.kubelet import wait_until
from tests.podsim.network import Network, leftover_namespaces

SERVER = textwrap.dedent("""
    import socket, sys
    listener = socket.create_server(("0.0.0.0", 9618))
    print("listening", flush=True)
    connection, _ = listener.accept()
    connection.recv(1)
    sys.stdin.readline()  # close when told to
    connection.close()
""")

CLIENT = textwrap.dedent("""
    import socket, sys
    connection = socket.create_connection((sys.argv[1], 9618), timeout=20)
    connection.send(b"x")
    print("connected", flush=True)
    sys.stdin.readline()
    print("peer closed" if connection.recv(1) == b"" else "data", flush=True)
""")


@pytest.fixture
def network():
    require_emulator()
    net = Network("ps-nettest-")
    net.create()
    try:
        yield net
    finally:
        net.destroy()
        assert not leftover_namespaces("ps-nettest-")


def in_namespace(netns: str, script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", script, *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_a_service_connection_sees_its_endpoint_close_after_the_endpoint_left(network):
    """kube-proxy keeps established connections on their endpoint through conntrack, so a
    client of a Service learns that the pod behind it closed the connection even once the
    Service has no endpoint left. HTCondor daemons depend on this to notice that their cached
    connection to a replaced collector is gone."""
    server_ns, server_ip = network.add_pod("server")
    client_ns, _ = network.add_pod("client")
    service = network.add_service("svc", [("TCP", 9618, 9618)])
    network.set_endpoint("svc", server_ip, {})
    server = in_namespace(server_ns, SERVER)
    client = None
    try:
        assert server.stdout.readline().strip() == "listening"
        client = in_namespace(client_ns, CLIENT, service.vip)
        assert client.stdout.readline().strip() == "connected"
        network.set_endpoint("svc", None, {})  # the pod is terminating: out of the Service
        server.stdin.write("\n")
        server.stdin.flush()
        client.stdin.write("\n")
        client.stdin.flush()
        assert client.stdout.readline().strip() == "peer closed"
    finally:
        for process in (server, client):
            if process:
                process.kill()
                process.wait(timeout=10)


def test_a_service_without_a_ready_endpoint_refuses_new_connections(network):
    client_ns, _ = network.add_pod("client")
    service = network.add_service("svc", [("TCP", 9618, 9618)])
    probe = subprocess.run(
        ["ip", "netns", "exec", client_ns, sys.executable, "-c",
         f"import socket; socket.create_connection(('{service.vip}', 9618), timeout=5)"],
        capture_output=True, text=True, timeout=30)
    assert "ConnectionRefusedError" in probe.stderr


def test_teardown_leaves_no_namespace_mount_or_process_behind():
    from tests.conftest import start_cluster
    cluster = start_cluster("tdown")
    try:
        pod = cluster.run_host("sleeper", {}, ["sleep", "infinity"])
        pid = pod.pid1
        workdir = cluster.workdir
    finally:
        cluster.teardown()
    assert not leftover_namespaces("ps-tdown-")
    assert not workdir.exists()
    wait_until(lambda: subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode,
               10, 0.1, "the pod's processes to be gone")


def test_a_start_clears_what_a_killed_run_left_and_refuses_a_running_cluster():
    """A run killed before its teardown (SIGKILL, a restarted machine) leaves its namespaces;
    the next start of a cluster of that name clears them, but never a cluster still running."""
    from tests.conftest import start_cluster
    left = Network("ps-stale-")
    left.create()  # what a killed run left: a namespace with nothing running in it
    assert leftover_namespaces("ps-stale-") == ["ps-stale-net"]
    cluster = start_cluster("stale")
    try:
        assert leftover_namespaces("ps-stale-") == ["ps-stale-net"]  # its own, made afresh
        cluster.run_host("sleeper", {}, ["sleep", "infinity"])
        with pytest.raises(RuntimeError, match="'stale' is running"):
            start_cluster("stale")
        assert cluster.pods["sleeper"].running()
    finally:
        cluster.teardown()
    assert not leftover_namespaces("ps-stale-")
