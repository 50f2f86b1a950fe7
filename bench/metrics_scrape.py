"""Benchmark scenario 8: what a scrape of the metrics exporter costs the collector. In an
emulated pool (real HTCondor) whose collector also holds N fake slot ads, from the
exporter's own pod:

- the collector's CPU time per exporter query (its one query for every ad type the metrics
  read), from /proc before and after `--queries` queries;
- how long a scrape takes with the cache cold (a query) and warm (none);
- a burst of `--burst` scrapes within the cache time: how many queries it sent (one).

    sudo .venv/bin/python -m bench.metrics_scrape [--slots 1000,5000] [--queries 20] [--burst 50]
"""

import argparse
import os
import statistics

from bench.collector_load import CLOCK_TICKS, fake_slot_ad
from bench.pool import CM, WORKER, rendered_pool, the
from tests.conftest import start_cluster
from tests.podsim.kubelet import wait_until

EXPORTER = "htcondor-metrics"
# In the exporter's pod: its module's own query, timed; and scrapes of its server.
QUERIES = ("import importlib.util, sys, time\n"
           "sys.path.insert(0, '/etc/htcondor-pool')  # where the exporter imports pod_token from\n"
           "spec = importlib.util.spec_from_file_location('e', '/etc/htcondor-pool/metrics_exporter.py')\n"
           "e = importlib.util.module_from_spec(spec); spec.loader.exec_module(e)\n"
           "for _ in range(int(sys.argv[1])):\n"
           "    t = time.perf_counter(); ads = e.query_collector(); print(time.perf_counter() - t, len(ads['startd']))\n")
SCRAPES = ("import sys, time, urllib.request\n"
           "for _ in range(int(sys.argv[1])):\n"
           "    t = time.perf_counter(); body = urllib.request.urlopen('http://127.0.0.1:9720/metrics').read()\n"
           "    print(time.perf_counter() - t, len(body))\n")


def collector_cpu_seconds(cm) -> float:
    """The collector's CPU time with its reaped children's: it forks a child to answer a
    query (COLLECTOR_QUERY_WORKERS), whose time its own would leave out."""
    pids = cm.exec(["sh", "-c", "for p in /proc/[0-9]*; do [ \"$(cat $p/comm)\" = condor_collecto ] && "
                                "echo ${p#/proc/}; done; true"]).stdout.split()
    fields = cm.exec(["cat", f"/proc/{min(pids, key=int)}/stat"]).stdout.rsplit(")", 1)[1].split()  # the parent
    return sum(int(f) for f in fields[11:15]) / CLOCK_TICKS  # utime, stime, cutime, cstime


def queries_sent(exporter) -> float:
    body = exporter.exec(["python3", "-c", "import urllib.request; print(urllib.request.urlopen("
                                           "'http://127.0.0.1:9720/metrics').read().decode())"]).stdout
    (line,) = [l for l in body.splitlines() if l.startswith("htcondor_exporter_collector_queries_total ")]
    return float(line.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", default="1000,5000", help="fake slot ads in the collector, comma-separated")
    parser.add_argument("--queries", type=int, default=20, help="exporter queries timed per slot count")
    parser.add_argument("--burst", type=int, default=50, help="scrapes sent at once within the cache time")
    args = parser.parse_args()
    try:
        counts = sorted(int(n) for n in args.slots.split(","))
    except ValueError:
        parser.error(f"--slots: {args.slots!r} is not allowed; expected whole numbers, comma-separated")
    if not counts or counts[0] < 1 or args.queries < 1 or args.burst < 2:
        parser.error("--slots, --queries and --burst: expected whole numbers >= 1 (--burst >= 2)")
    if os.geteuid() != 0:
        parser.error("the pod emulator needs root (namespaces, mounts, debootstrap): run it as root")
    cluster = start_cluster("bench-metrics")
    try:
        cluster.apply_rendered(rendered_pool("project", 1), timeout=600)
        cm, worker, exporter = the(cluster, CM), the(cluster, WORKER), the(cluster, EXPORTER)
        print("| slot ads | collector CPU per query | query time (median) | scrape, cache cold | "
              "scrape, cache warm | exposition size |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: |")
        sent = 0
        for count in counts:
            ads = "\n".join(fake_slot_ad(i) for i in range(sent, count))
            worker.exec(["sh", "-c", "cat > /tmp/load.ads"], stdin=ads)
            done = worker.exec(["condor_advertise", "-multiple", "-tcp", "UPDATE_STARTD_AD", "/tmp/load.ads"],
                               timeout=1200)
            assert done.returncode == 0, done.stdout + done.stderr
            sent = count

            def slots_seen() -> int | None:
                out = exporter.exec(["python3", "-c", QUERIES, "1"], timeout=120).stdout.split()
                return int(out[1]) if out and int(out[1]) >= count else None
            wait_until(slots_seen, 600, 1, f"the collector to hold {count} fake slots")
            before = collector_cpu_seconds(cm)
            timed = exporter.exec(["python3", "-c", QUERIES, str(args.queries)], timeout=1200)
            assert timed.returncode == 0, timed.stderr
            cpu = (collector_cpu_seconds(cm) - before) / args.queries
            query = statistics.median(float(l.split()[0]) for l in timed.stdout.splitlines())
            # Cold: past the cache time (5 s) since the last scrape; warm: right after it.
            exporter.exec(["sleep", "6"], timeout=30)
            scrapes = exporter.exec(["python3", "-c", SCRAPES, "2"], timeout=300).stdout.splitlines()
            (cold, size), (warm, _) = [(float(a), int(b)) for a, b in (l.split() for l in scrapes)]
            print(f"| {count:,} | {cpu * 1e3:.1f} ms | {query * 1e3:.1f} ms | {cold * 1e3:.1f} ms | "
                  f"{warm * 1e3:.1f} ms | {size:,} bytes |")
        before = queries_sent(exporter)
        exporter.exec(["sleep", "6"], timeout=30)  # the cache expired: the burst's first scrape queries
        burst = ("import threading, urllib.request\n"
                 "def get(): urllib.request.urlopen('http://127.0.0.1:9720/metrics').read()\n"
                 f"threads = [threading.Thread(target=get) for _ in range({args.burst})]\n"
                 "[t.start() for t in threads]; [t.join() for t in threads]\n")
        assert exporter.exec(["python3", "-c", burst], timeout=300).returncode == 0
        print(f"\na burst of {args.burst} concurrent scrapes sent the collector "
              f"{queries_sent(exporter) - before:.0f} query (counted by the exporter, within its cache time)")
    finally:
        cluster.teardown()


if __name__ == "__main__":
    main()
