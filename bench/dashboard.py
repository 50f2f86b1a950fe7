"""The Grafana dashboard's panels as a picture (docs/dashboard.png), drawn from a real
Prometheus: a pool on the real single-node cluster (tests/kube) through `pulumi up`, a few
minutes of jobs (more than the slots, one held, a central-manager replacement), then each
panel's own queries (pool/grafana/htcondor-pool.json) asked of the cluster's Prometheus over
that window (`/api/v1/query_range`) and drawn where the dashboard places them. Drawn with
matplotlib, not by Grafana (which these machines cannot fetch): the data and queries are the
dashboard's, the styling is not.

    sudo .venv/bin/python -m bench.dashboard [--out docs/dashboard.png] [--minutes 4]
"""

import argparse
import json
import os
import re
import time
import urllib.parse
import urllib.request

from tests.conftest import start_kube_cluster
from tests.htcondor_jobs import SLEEPER, sleeper_submit, submit
from tests.kube.kubectl import KubePod, Kubectl
from tests.kube.pulumi import Project
from tests.podsim.kubelet import wait_until
from tests.render import REPO
from tests.test_kube_walkthrough import local_image_config

NAMESPACE = "dashboard"
DASHBOARD = REPO / "pool" / "grafana" / "htcondor-pool.json"
RESOURCES = {"centralManager": {"cpu": "100m", "memory": "256Mi", "disk": "512Mi"},
             "schedd": {"cpu": "200m", "memory": "512Mi", "disk": "1Gi"},
             "worker": {"cpu": "300m", "memory": "512Mi", "disk": "1Gi"}}


def query_range(url: str, expr: str, start: float, end: float, step: float) -> list[dict]:
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{params}", timeout=30) as reply:
        answer = json.loads(reply.read())
    if answer["status"] != "success":
        raise RuntimeError(f"{expr}: {answer}")
    return answer["data"]["result"]


def legend(template: str, labels: dict) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template) or "value"


def draw(url: str, start: float, end: float, out) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dashboard = json.loads(DASHBOARD.read_text())
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"])
    figure = plt.figure(figsize=(16, rows * 0.42))
    grid = figure.add_gridspec(rows, 24, hspace=1.2, wspace=1.5)
    step = max(2.0, (end - start) / 300)
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        axes = figure.add_subplot(grid[g["y"]:g["y"] + g["h"], g["x"]:g["x"] + g["w"]])
        axes.set_title(panel["title"], fontsize=10, loc="left")
        for target in panel["targets"]:
            for series in query_range(url, target["expr"], start, end, step):
                times = [(float(t) - start) / 60 for t, _ in series["values"]]
                values = [float(v) for _, v in series["values"]]
                if panel["type"] == "stat":
                    axes.text(0.02 + 0.2 * len(axes.texts), 0.4, f"{legend(target['legendFormat'], series['metric'])}"
                              f"\n{values[-1]:g}", fontsize=12, transform=axes.transAxes)
                else:
                    axes.plot(times, values, label=legend(target["legendFormat"], series["metric"]))
        if panel["type"] == "stat":
            axes.set_axis_off()
        else:
            axes.set_xlabel("minutes", fontsize=8)
            axes.tick_params(labelsize=8)
            if axes.lines:
                axes.legend(fontsize=7, loc="upper left")
            if panel["fieldConfig"]["defaults"].get("unit") == "s":
                axes.set_ylabel("seconds", fontsize=8)
    figure.suptitle(f"{dashboard['title']}: the dashboard's queries against a real Prometheus "
                    "(drawn with matplotlib, not Grafana)", fontsize=12)
    figure.savefig(out, dpi=80, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "dashboard.png"))
    parser.add_argument("--minutes", type=float, default=4, help="how long the jobs run")
    args = parser.parse_args()
    if args.minutes < 1:
        parser.error(f"--minutes: {args.minutes} is not allowed; expected at least 1")
    if os.geteuid() != 0:
        parser.error("the real cluster needs root (namespaces, mounts, cgroups): run it as root")
    cluster, env = start_kube_cluster("dashboard")
    try:
        project = Project.create(cluster.workdir / "projects" / "dashboard", env, "dev")
        local_image_config(project, env["HTCONDOR_POOL_TEST_IMAGE"], RESOURCES)
        start = time.time()
        project.up(namespace=NAMESPACE, workers="2")
        kubectl = Kubectl(env)
        schedd = KubePod(kubectl, NAMESPACE, "deploy/htcondor-schedd")
        wait_until(lambda: kubectl.pods(NAMESPACE, "app.kubernetes.io/component=worker")[1:], 120, 1, "workers")
        seconds = int(args.minutes * 60)
        submit(schedd, "short", SLEEPER, sleeper_submit(seconds // 4, count=6, tag="short"))
        submit(schedd, "held", SLEEPER, sleeper_submit(0, "hold = true", tag="held"))
        time.sleep(seconds / 2)  # a picture's worth of data, not a synchronisation
        (cm,) = kubectl.pods(NAMESPACE, "app.kubernetes.io/component=central-manager")
        kubectl("-n", NAMESPACE, "delete", "pod", cm["metadata"]["name"])
        time.sleep(seconds / 2)
        draw(env["HTCONDOR_POOL_TEST_PROMETHEUS"], start, time.time(), args.out)
        print(f"wrote {args.out}")
        project.destroy()
    finally:
        cluster.down()


if __name__ == "__main__":
    main()
