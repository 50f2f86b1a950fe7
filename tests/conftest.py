import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import leftovers
from tests.render import render

# Measurements tests report (e.g. central-manager recovery time), printed at the end.
REPORTS: list[str] = []
# Under pytest-xdist (`-n 2`, as README's test command runs): this process's worker id, or
# None in the controller or a run without workers.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
# The two groups of tests a run with workers gives them (pytest_xdist_make_scheduler): those
# that need what tests/kube builds from source (the real cluster, the Pulumi CLI), and all
# the others (the unit tests, the emulator), each group run in its order by one worker. They
# share nothing but the machine, and mostly wait (for HTCondor, for Kubernetes), so side by
# side they take about as long as the longer of them. The scheduler knows a test by its id
# only: the modules of the `cluster` group are these (pytest_collection_modifyitems checks
# that they hold exactly the tests marked built_from_source).
CLUSTER_MODULES = ("tests/test_kube_", "tests/test_package_cli.py")


def group_of(nodeid: str) -> str:
    return "cluster" if nodeid.startswith(CLUSTER_MODULES) else "local"
_SNAPSHOT = pytest.StashKey[leftovers.Snapshot]()
_LEFT = pytest.StashKey[list]()


@pytest.fixture(scope="module")
def dev():
    """The dev stack as Pulumi.dev.yaml configures it."""
    return render()


def require_root(what: str) -> None:
    """Under CI a missing prerequisite fails; by hand it skips."""
    if os.geteuid() != 0:
        message = f"the {what} tests need root (namespaces, mounts, cgroups)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def require_emulator():
    require_root("pod emulator")


def _interrupt(*_):
    raise KeyboardInterrupt


def start_cluster(name: str, node=None):
    """An emulated cluster (tests/podsim) on `node` (a tests.podsim.node.Node; default: a
    node without GPUs or labels of its own)."""
    from tests.podsim.cluster import Cluster
    from tests.podsim.rootfs import ensure_rootfs
    require_emulator()
    rootfs = ensure_rootfs()
    # SIGTERM (a CI timeout, a kill) tears down like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    return Cluster(rootfs, Path(f"/run/podsim/{name}"), name=name, node=node).start()


@contextmanager
def running_pool(name: str, rendered, node=None):
    """A rendered program applied to a fresh emulated cluster (see start_cluster), torn
    down on leaving, also on failure."""
    cluster = start_cluster(name, node)
    try:
        cluster.apply_rendered(rendered)
        yield cluster
    finally:
        cluster.teardown()


def start_kube_cluster(name: str):
    """A real single-node cluster (tests/kube), built on first use: (cluster, its env for
    kubectl). The caller tears it down with cluster.down()."""
    from tests.kube.cluster import Cluster
    require_root("real cluster")
    signal.signal(signal.SIGTERM, _interrupt)
    cluster = Cluster(name)
    if cluster.leftovers():  # an earlier run that was killed before its teardown
        cluster.down()
    cluster.up()
    env = {**os.environ, **cluster.env()}
    return cluster, env


@pytest.fixture(scope="session")
def kube_cluster():
    """One real single-node cluster for the whole run (tests/kube): (cluster, its env for
    kubectl and pulumi). Each test module makes its own project copy and stack on it."""
    cluster, env = start_kube_cluster("t")
    try:
        yield cluster, env
    finally:
        cluster.down()


@pytest.fixture(scope="module")
def emulated_pool():
    """The program's rendered pool running in the emulator, torn down afterwards."""
    # Outside hosts (Cluster.run_host) live in 10.244.200.0/24 unless a test says otherwise.
    rendered = render({"resources": '{"worker": {"cpu": "2", "memory": "1536Mi"}}',
                       "allowedCidrs": '["10.244.200.0/24"]'})
    cluster = start_cluster("t")
    try:
        started = time.monotonic()
        cluster.apply_rendered(rendered)
        REPORTS.append(f"pool Available {time.monotonic() - started:.1f}s after `up` started")
        yield cluster
    finally:
        cluster.teardown()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    from tests.podsim.cluster import Cluster
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, Cluster):
            report.sections.append(("pod logs (tails)", value.diagnostics()))
            report.sections.append(("cluster events", "\n".join(
                f"{t:.1f} {e}" for t, e in value.events[-60:])))
        elif hasattr(value, "diagnostics") and hasattr(value, "kubectl"):  # a real-cluster stack
            report.sections.append(("kubectl: objects, events, pod logs", value.diagnostics()))


def pytest_configure(config):
    config.addinivalue_line("markers", "real_cluster: uses the real single-node cluster (tests/kube); set on "
                                       "every test that does, by the kube_cluster fixture's use")
    config.addinivalue_line("markers", "every_htcondor: a real-cluster test .ci/run's second pass runs again "
                                       "on the other HTCondor (HTCONDOR_POOL_SUITE=sid)")
    config.addinivalue_line("markers", "built_from_source: needs what tests/kube builds from source (the real "
                                       "cluster, the Pulumi CLI and its language hosts); every real_cluster "
                                       "test is one")


def _built_from_source(item) -> bool:
    return item.get_closest_marker("built_from_source") is not None


def pytest_collection_modifyitems(items):
    """Mark the real cluster's tests, and run every test that needs what tests/kube builds
    last (in their own order): without workers, on a machine that has not built it yet,
    every other test then runs while it builds in the background (pytest_collection_finish).
    With workers, those are the `cluster` group: by module (CLUSTER_MODULES), checked here."""
    for item in items:
        if "kube_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real_cluster)
            item.add_marker(pytest.mark.built_from_source)
        if (group_of(item.nodeid) == "cluster") != _built_from_source(item):
            raise pytest.UsageError(f"{item.nodeid}: a test that needs what tests/kube builds (built_from_source) "
                                    f"belongs in one of {CLUSTER_MODULES}, and only such a test")
    items.sort(key=lambda item: (_built_from_source(item), item.get_closest_marker("real_cluster") is not None))


def pytest_xdist_make_scheduler(config, log):
    """With workers (`-n 2`): each group (group_of) is one unit of work, run by one worker in
    its order, the two side by side."""
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)
    return ByGroup(config, log)


def pytest_sessionstart(session):
    if WORKER is None:  # the controller's snapshot covers its workers
        session.config.stash[_SNAPSHOT] = leftovers.take()


_BUILDER = pytest.StashKey[subprocess.Popen]()


def pytest_collection_finish(session):
    """A run that will start the real cluster, on a machine that has not built it yet, builds
    it in the background from the start (`python -m tests.kube build`, its log in the cache),
    while the tests before the cluster's first use run: about half an hour of compiling that
    would otherwise begin only at the first real-cluster test. The cluster's own build
    (build.build_all, per component under a lock) then waits for, or takes over, what this
    one has not finished. With workers, the worker of the `cluster` group builds from its
    first test on, beside the other."""
    if WORKER is not None or os.geteuid() != 0 or not any(_built_from_source(item) for item in session.items):
        return
    from tests.kube import build
    if build.cached() is not None:
        return
    log = build.bin_root().parent / "background-build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        session.config.stash[_BUILDER] = subprocess.Popen(
            [sys.executable, "-m", "tests.kube", "build"], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=Path(__file__).resolve().parent.parent)


def pytest_sessionfinish(session, exitstatus):
    """A run leaves nothing of its own behind: under CI=true, anything left fails it. (A
    worker hands its measurements to the controller, which checks once every worker is done.)"""
    if WORKER is not None:
        session.config.workeroutput["reports"] = json.dumps(REPORTS)
        return
    builder = session.config.stash.get(_BUILDER, None)
    if builder is not None and builder.poll() is None:  # a run that ended before needing it
        os.killpg(builder.pid, signal.SIGKILL)
        builder.wait()
    found = leftovers.wait_for_none(session.config.stash[_SNAPSHOT])
    session.config.stash[_LEFT] = found
    if found and os.environ.get("CI") == "true":
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_testnodedown(node, error):
    """A worker is done: its measurements join the controller's (pytest-xdist)."""
    REPORTS.extend(json.loads(getattr(node, "workeroutput", {}).get("reports", "[]")))


def pytest_terminal_summary(terminalreporter):
    found = terminalreporter.config.stash.get(_LEFT, [])
    if found:
        terminalreporter.section("left behind by this run", red=True)
        for line in found:
            terminalreporter.write_line(line)
    if REPORTS:
        terminalreporter.section("measurements")
        for line in REPORTS:
            terminalreporter.write_line(line)
