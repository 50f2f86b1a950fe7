"""Benchmark scenario 6: the program itself. Runs __main__.py under Pulumi mocks (as the
unit tests do) with 1 and with 10,000 workers, each in a fresh process, and prints the wall
time and peak memory of each. Both should be flat: the worker count is one replica field.

    .venv/bin/python -m bench.program [--repeat N]
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORKER_COUNTS = (1, 10_000)


def measure_once(workers: int) -> dict:
    """In this (fresh) process: render the program once; its time and peak RSS."""
    started = time.perf_counter()
    from tests.render import render  # imported inside the timing: part of running the program
    rendered = render({"workers": str(workers)})
    seconds = time.perf_counter() - started
    assert rendered.outputs["workers"] == workers
    return {"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run(workers: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.program", "--one", str(workers)], cwd=REPO,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per worker count (median shown)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure_once(args.one)))
        return
    if args.repeat < 1:
        parser.error(f"--repeat: {args.repeat} is not allowed; expected a whole number >= 1")
    results = {w: [run(w) for _ in range(args.repeat)] for w in WORKER_COUNTS}
    median = {w: {k: statistics.median(r[k] for r in runs) for k in ("seconds", "peak_mib")}
              for w, runs in results.items()}
    low, high = WORKER_COUNTS
    print(f"| workers | time (s, median of {args.repeat}) | peak memory (MiB) |")
    print("| ---: | ---: | ---: |")
    for w in WORKER_COUNTS:
        print(f"| {w:,} | {median[w]['seconds']:.2f} | {median[w]['peak_mib']:.0f} |")
    print(f"| ratio {high:,}/{low} | {median[high]['seconds'] / median[low]['seconds']:.2f}x | "
          f"{median[high]['peak_mib'] / median[low]['peak_mib']:.2f}x |")


if __name__ == "__main__":
    main()
