"""A bounded load run against gunicorn on 127.0.0.1: simulated reporters submit
(some with files), and reopen their cases, for a fixed time. Prints errors and
latencies; exits non-zero on any error.

    python -m bench.load --seconds 30 --clients 8     (make load)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from portal.desk import keystore
from portal.protocol.organization import load
from tests.harness.live import live_portal
from tests.harness.reporters import Timings, run_load


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(timings: Timings, seconds: float) -> str:
    lines = [f"{'operation':<14}{'count':>7}{'per s':>8}{'p50 ms':>9}{'p99 ms':>9}"]
    for name, values in sorted(timings.samples.items()):
        lines.append(
            f"{name:<14}{len(values):>7}{len(values) / seconds:>8.1f}"
            f"{statistics.median(values) * 1000:>9.1f}{percentile(values, 99) * 1000:>9.1f}"
        )
    lines.append(f"errors: {len(timings.errors)}")
    lines.extend(f"  {e}" for e in timings.errors[:10])
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        keystore.init(base / "desk", "load", "Load test", cost="interactive")
        org = load(base / "desk" / "organization.json")
        with live_portal(base / "portal", base / "desk" / "organization.json") as live:
            print(f"load: {args.clients} clients for {args.seconds:.0f} s against {live.url}")
            timings = run_load(live.url, org, args.seconds, args.clients)
    print(report(timings, args.seconds))
    return 1 if timings.errors else 0


if __name__ == "__main__":
    sys.exit(main())
