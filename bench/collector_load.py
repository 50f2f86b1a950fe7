"""What one ad update costs the collector, to turn the update rate that
`updateIntervalSeconds` implies into a collector load. From a worker pod of an emulated
pool, and reading the collector's CPU time from /proc before and after:

- N distinct slot ads with `condor_advertise -multiple`, over one authenticated connection:
  the cost of an update itself (a lower bound: daemons send theirs over a connection each);
- M ads each with its own `condor_advertise`, i.e. a new connection and a full IDTOKENS
  authentication per update: an upper bound (daemons reuse their security session).

    sudo .venv/bin/python -m bench.collector_load [--ads 5000] [--connections 200]
"""

import argparse
import os

from bench.pool import CM, WORKER, rendered_pool, the
from tests.conftest import start_cluster
from tests.podsim.kubelet import wait_until

CLOCK_TICKS = 100  # USER_HZ on Linux


def fake_slot_ad(index: int) -> str:
    return (f'MyType = "Machine"\nName = "slot1@load-{index}"\nMachine = "load-{index}"\n'
            f'MyAddress = "<10.244.250.{index % 250 + 1}:9618>"\nRequirements = true\n'
            f'Cpus = 1\nMemory = 1024\nState = "Unclaimed"\nActivity = "Idle"\n')


def collector_cpu_seconds(cm) -> float:
    pid = cm.exec(["sh", "-c", "for p in /proc/[0-9]*; do [ \"$(cat $p/comm)\" = condor_collecto ] && "
                               "echo ${p#/proc/}; done; true"]).stdout.split()[0]
    fields = cm.exec(["cat", f"/proc/{pid}/stat"]).stdout.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ads", type=int, default=5000, help="slot ads to send over one connection")
    parser.add_argument("--connections", type=int, default=200, help="slot ads to send one connection each")
    args = parser.parse_args()
    for name in ("ads", "connections"):
        if getattr(args, name) < 100:
            parser.error(f"--{name}: {getattr(args, name)} is not allowed; expected a whole number >= 100")
    if os.geteuid() != 0:
        parser.error("the pod emulator needs root (namespaces, mounts, debootstrap): run it as root")
    cluster = start_cluster("bench")
    try:
        cluster.apply_rendered(rendered_pool("project", 1), timeout=600)
        cm, worker = the(cluster, CM), the(cluster, WORKER)
        ads_file = "\n".join(fake_slot_ad(i) for i in range(args.ads))
        written = worker.exec(["sh", "-c", "cat > /tmp/load.ads"], stdin=ads_file)
        assert written.returncode == 0, written.stderr
        before = collector_cpu_seconds(cm)
        sent = worker.exec(["condor_advertise", "-multiple", "-tcp", "UPDATE_STARTD_AD", "/tmp/load.ads"],
                           timeout=1200)
        assert sent.returncode == 0, sent.stdout + sent.stderr

        def all_in(count):
            names = cm.exec(["condor_status", "-af", "Name"], timeout=120).stdout.split()
            return sum(name.startswith("slot1@load-") for name in names) >= count
        wait_until(lambda: all_in(args.ads), 600, 1, f"the collector to hold all {args.ads} ads")
        one_connection = (collector_cpu_seconds(cm) - before) / args.ads

        for i in range(args.ads, args.ads + args.connections):
            worker.exec(["sh", "-c", f"cat > /tmp/load-{i}.ad"], stdin=fake_slot_ad(i))
        before = collector_cpu_seconds(cm)
        sent = worker.exec(["sh", "-c", f"for i in $(seq {args.ads} {args.ads + args.connections - 1}); do "
                                        "condor_advertise UPDATE_STARTD_AD /tmp/load-$i.ad || exit 1; done"],
                           timeout=1200)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        wait_until(lambda: all_in(args.ads + args.connections), 600, 1, "the collector to hold every ad")
        own_connection = (collector_cpu_seconds(cm) - before) / args.connections

        print(f"collector CPU per update: {one_connection * 1e3:.3f} ms over one connection ({args.ads} ads), "
              f"{own_connection * 1e3:.3f} ms with a new authenticated connection each ({args.connections} ads); "
              "the condor_status queries counting them included")
        print("| workers | updates every | updates/s | collector CPU, lower bound | upper bound |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        for workers in (1000, 10000):
            for interval in (12, 60):
                rate = 2 * workers / interval  # each worker's slot ad and its master's ad
                print(f"| {workers:,} | {interval} s | {rate:.0f} | {rate * one_connection * 100:.1f}% of a core "
                      f"| {rate * own_connection * 100:.0f}% of a core |")
    finally:
        cluster.teardown()


if __name__ == "__main__":
    main()
