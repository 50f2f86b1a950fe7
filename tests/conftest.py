import os
import signal
import time
from pathlib import Path

import pytest

from tests.render import render

# Measurements tests report (e.g. central-manager recovery time), printed at the end.
REPORTS: list[str] = []


@pytest.fixture(scope="module")
def dev():
    """The dev stack as Pulumi.dev.yaml configures it."""
    return render()


def require_emulator():
    """The emulator needs root. Under CI a missing prerequisite fails; by hand it skips."""
    if os.geteuid() != 0:
        message = "the pod emulator tests need root (namespaces, mounts, debootstrap)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def _interrupt(*_):
    raise KeyboardInterrupt


def start_cluster(name: str):
    from tests.podsim.cluster import Cluster
    from tests.podsim.rootfs import ensure_rootfs
    require_emulator()
    rootfs = ensure_rootfs()
    # SIGTERM (a CI timeout, a kill) tears down like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    return Cluster(rootfs, Path(f"/run/podsim/{name}"), name=name).start()


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
    from tests.podsim.cluster import Cluster
    cluster = next((v for v in getattr(item, "funcargs", {}).values() if isinstance(v, Cluster)), None)
    if report.failed and cluster is not None:
        report.sections.append(("pod logs (tails)", cluster.diagnostics()))
        report.sections.append(("cluster events", "\n".join(
            f"{t:.1f} {e}" for t, e in cluster.events[-60:])))


def pytest_terminal_summary(terminalreporter):
    if REPORTS:
        terminalreporter.section("measurements")
        for line in REPORTS:
            terminalreporter.write_line(line)
