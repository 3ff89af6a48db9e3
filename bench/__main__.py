"""make bench: every figure next to the limit it is measured against, in one run.

python -m bench [--only crypto,pages,throughput,engines,ingest,desk,flood] [--ingest-mib 1024]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from portal.desk import keystore
from portal.protocol.organization import load
from tests.harness.live import live_portal

from . import crypto, desk, engines, flood, ingest, journeys, pages, throughput, workloads

SECTIONS = (
    "crypto",
    "journeys",
    "pages",
    "throughput",
    "workloads",
    "engines",
    "ingest",
    "desk",
    "flood",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--ingest-mib", type=int, default=1024)
    parser.add_argument("--file-mib", type=int, default=64, help="browser file encryption size")
    args = parser.parse_args()
    only = set(args.only.split(","))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(
        dir=Path.cwd() / "instance" if (Path.cwd() / "instance").is_dir() else None
    ) as tmp:
        base = Path(tmp)
        keystore.init(base / "home", "bench", "Bench organization", cost="interactive")
        org = load(base / "home" / "organization.json")
        browser_pow_ms = float("nan")
        if "crypto" in only:
            results = crypto.run(org, args.file_mib)
            browser_pow_ms = results["Firefox Safer"]["pow_ms"]
            _print(crypto.report(results))
        with live_portal(
            base / "portal",
            base / "home" / "organization.json",
            # Proofs of work cost the client, not the server: the floods section
            # measures them; here each still costs the server its one check.
            extra_env={"PORTAL_DERIVE_RATE": "10000", "PORTAL_POW_BITS": "0"},
        ) as live:
            if "journeys" in only:
                _print(journeys.report(journeys.run(live.url)))
            if "pages" in only:
                _print(pages.report(pages.run(live.url)))
            if "throughput" in only:
                figures = throughput.run(live.url, org)
                _print(throughput.report(figures, throughput.fsync_rate(live.data_dir)))
            if "ingest" in only:
                size = args.ingest_mib << 20
                portal_figures = ingest.portal_upload(live.url, size, live.workers())
                raw = ingest.raw_copy(live.data_dir, size)
                _print(ingest.report(portal_figures, raw, size))
        if "workloads" in only:
            # As shipped (its work gate's defaults), but for the proof of work,
            # which the bench's own client would otherwise pay on these cores
            # (the server still checks every proof; the flood section prices it).
            keys = base / "home" / "organization.json"
            env = {"PORTAL_POW_BITS": "0", "PORTAL_POW_RATE": "1000000"}
            with live_portal(base / "workloads", keys, extra_env=env) as live:
                _print(workloads.report(workloads.run(live.url, org, live.workers)))
        if "engines" in only:
            _print(
                engines.report(
                    engines.run(base / "engines", base / "home" / "organization.json", org)
                )
            )
        if "desk" in only:
            _print(desk.report(desk.run(base / "desk-bench", base / "home", "bench")))
        if "flood" in only:
            with live_portal(base / "flood", base / "home" / "organization.json") as live:
                figures = {
                    "js": flood.js_flood(live.url, org),
                    "nojs": flood.nojs_flood(live.url),
                    "browser_pow_ms": browser_pow_ms,
                }
                figures["desk"] = flood.desk_cost(live, base / "home", base)
            _print(flood.report(figures))
    print(f"bench finished in {time.monotonic() - started:.0f} s")
    return 0


def _print(lines: list[str]) -> None:
    print("\n".join(lines), end="\n\n", flush=True)


if __name__ == "__main__":
    sys.exit(main())
