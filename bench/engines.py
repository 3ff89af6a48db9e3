"""SQLite against PostgreSQL, and two hosts against one (issue 19's targets).

Each setup runs gunicorn on this machine: SQLite with 2 workers; PostgreSQL (a
throwaway cluster, as the tests use) with 2 workers on one host; and two hosts
of 1 worker each on one PostgreSQL database and one shared blob directory, so
the cores are split between them. Each is measured at 8 clients against its own
trivial endpoint in the same run: browser-sealed submissions per second.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from portal.protocol.organization import Organization
from tests.harness.live import live_portal
from tests.harness.postgres import cluster

from .throughput import submissions

CLIENTS = 8
COMMON = {"PORTAL_DERIVE_RATE": "10000", "PORTAL_POW_BITS": "0", "PORTAL_POW_RATE": "1000000"}


def run(base: Path, keys: Path, org: Organization) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    with live_portal(base / "sqlite", keys, workers=2, extra_env=COMMON) as live:
        out["SQLite, one host (2 workers)"] = submissions(live.url, org, CLIENTS)
    with cluster() as pg:
        one = {**COMMON, "PORTAL_DATABASE_URL": pg.new_database("one"),
               "PORTAL_BLOB_DIR": str(base / "pg-one-blobs")}  # fmt: skip
        with live_portal(base / "pg-one", keys, workers=2, extra_env=one) as live:
            out["PostgreSQL, one host (2 workers)"] = submissions(live.url, org, CLIENTS)
        two = {**COMMON, "PORTAL_DATABASE_URL": pg.new_database("two"),
               "PORTAL_BLOB_DIR": str(base / "pg-two-blobs")}  # fmt: skip
        with ExitStack() as stack:
            hosts = [
                stack.enter_context(live_portal(base / f"pg-{n}", keys, workers=1, extra_env=two))
                for n in ("a", "b")
            ]
            out["PostgreSQL, two hosts (1 worker each)"] = submissions(
                [h.url for h in hosts], org, CLIENTS
            )
    return out


def report(r: dict[str, Any]) -> list[str]:
    lines = [
        f"{'engines and hosts, ' + str(CLIENTS) + ' clients':<40}{'submit/s':>9}{'p99 ms':>8}"
        f"{'errors':>7}{'trivial/s':>10}{'ratio':>7}"
    ]
    ratios = {}
    for name, figures in r.items():
        sub, ping = figures["submit (browser-sealed)"], figures["trivial GET /api/ping"]
        ratios[name] = sub["rate"] / ping["rate"]
        lines.append(
            f"{name:<40}{sub['rate']:>9.1f}{sub['p99']:>8.0f}{sub['errors']:>7}"
            f"{ping['rate']:>10.1f}{ratios[name]:>7.3f}"
        )
    sqlite, pg1, pg2 = (
        r["SQLite, one host (2 workers)"],
        r["PostgreSQL, one host (2 workers)"],
        r["PostgreSQL, two hosts (1 worker each)"],
    )
    pg_vs_sqlite = (
        ratios["PostgreSQL, one host (2 workers)"] / ratios["SQLite, one host (2 workers)"]
    )
    two_vs_one = pg2["submit (browser-sealed)"]["rate"] / pg1["submit (browser-sealed)"]["rate"]
    errors = pg2["submit (browser-sealed)"]["errors"]
    lines += [
        f"  target: PostgreSQL ratio >= SQLite ratio: {pg_vs_sqlite:.2f}x "
        f"{'met' if pg_vs_sqlite >= 1 else 'NOT met'}",
        f"  target: two hosts no errors, throughput within 20% of one: {two_vs_one:.2f}, "
        f"{errors} errors {'met' if errors == 0 and two_vs_one >= 0.8 else 'NOT met'}",
        f"  (SQLite submissions {sqlite['submit (browser-sealed)']['rate']:.0f}/s)",
    ]
    return lines
