"""What a reporter's browser asks of the server, whole (page, then POST), at 1, 8
and 32 clients, each figure next to the one-line Flask route (bench/trivial.py)
served by gunicorn with the same settings and measured just before it (see
``run``), and the workers' memory after the load (issue 20's table).

- report page GET: the form, as a reporter opens it;
- submit, browser-sealed: the page, the proof of work, the sealed report;
- submit, no JavaScript: the page, then the form (the server seals it);
- open case, no JavaScript: the case page, then the code (the server derives it);
- /api/ping: the portal's own cheapest answer.

Each client keeps its connection alive (bench/client.py), as browsers and load
tools do. Next to each rate is the server's own CPU per operation (its workers'
user and system time over the run), which the load client's share of these two
cores does not blur.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from portal.protocol.organization import Organization
from tests.harness.http import Session
from tests.harness.live import BIN, ROOT, free_port, wait_until_up
from tests.harness.reporters import Timings, submit

from .client import KeptAlive
from .throughput import _drive, _sealed_body, work_in_page

LEVELS = (1, 8, 32)


@contextmanager
def trivial_route(workers: int) -> Iterator[tuple[str, Callable[[], list[int]]]]:
    """The one-line route under gunicorn; yields its address and its workers' pids."""
    port = free_port()
    env = {**os.environ, "PORTAL_BIND": f"127.0.0.1:{port}", "PORTAL_WORKERS": str(workers)}
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "bench.trivial:app"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}", lambda: children(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(p) for p in fh.read().split()]


def rss_mib(pids: list[int]) -> float:
    """The largest resident set among ``pids`` (the workers), in MiB."""
    best = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    best = max(best, int(line.split()[1]))
    return best / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User plus system time the processes ``pids`` have used so far."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _each(
    url: str, pids: Callable[[], list[int]], clients: int, flow: Callable[[KeptAlive], bool]
) -> dict[str, float]:
    sessions = [KeptAlive(url) for _ in range(clients)]
    workers = pids()
    before = cpu_seconds(workers)
    figures = _drive(clients, lambda c, _i: flow(sessions[c]))
    figures["cpu_ms"] = (cpu_seconds(workers) - before) * 1000 / max(1, figures["count"])
    for s in sessions:
        s.close()
    return figures


def _flows(org: Organization, codes_: list[str]) -> dict[str, Callable[[KeptAlive], bool]]:
    lock = threading.Lock()
    turn = iter(range(10**9))

    def page(s: KeptAlive) -> bool:
        return s.get("/report").status == 200

    def sealed(s: KeptAlive) -> bool:
        page = s.get("/report")
        if page.status != 200:
            return False
        body = _sealed_body(org, s, work_in_page(page.text))  # as the browser: no /api/pow
        r = s.request(
            "POST",
            "/api/reports",
            body,
            {"Content-Type": "application/json", "X-CSRFToken": s.token},
        )
        return r.status == 201

    def nojs(s: KeptAlive) -> bool:
        return (
            s.get("/report").status == 200
            and s.form("/report", {"what_happened": "a report without JavaScript"}).status == 200
        )

    def open_case(s: KeptAlive) -> bool:
        with lock:
            code = codes_[next(turn) % len(codes_)]
        s.cookies.clear()  # a reporter's own browser: no case open yet
        return s.get("/case").status == 200 and s.form("/case", {"code": code}).status == 200

    return {
        "report page GET": page,
        "submit, browser-sealed (page+POST)": sealed,
        "submit, no JS (page+POST)": nojs,
        "open case, no JS (page+POST)": open_case,
        "/api/ping": lambda s: s.request("GET", "/api/ping").status == 200,
    }


def run(url: str, org: Organization, worker_pids: Callable[[], list[int]]) -> dict[str, Any]:
    """Each workload at each level right after the one-line route at that level:
    the machine's speed drifts by up to a quarter within a minute (the route alone
    served 1,760 to 2,370 requests a second at 8 clients in four runs of one
    sitting), so a ratio is taken between neighbours, not across the whole run.
    The one-line route's row shows its first measurement at each level."""
    made = [submit(Session(url), org, Timings(), f"case {i}") for i in range(64)]
    out: dict[str, Any] = {"rss_start": rss_mib(worker_pids())}
    flows = _flows(org, made)
    with trivial_route(len(worker_pids())) as (trivial, trivial_pids):
        for level in LEVELS:
            for name, flow in flows.items():
                base = _each(
                    trivial, trivial_pids, level, lambda s: s.request("GET", "/").status == 200
                )
                out.setdefault("one-line route", {}).setdefault(level, base)
                figures = _each(url, worker_pids, level, flow)
                figures["base_rate"], figures["base_cpu_ms"] = base["rate"], base["cpu_ms"]
                out.setdefault(name, {})[level] = figures
    out["rss_after"] = rss_mib(worker_pids())
    return out


TARGETS = {  # issue 20: (workload, clients, least ratio to the one-line route)
    "submit, browser-sealed (page+POST)": (8, 0.10),
    "submit, no JS (page+POST)": (8, 0.03),
    "report page GET": (8, 0.25),
}
P99_LIMITS = {"submit, browser-sealed (page+POST)": 250.0, "submit, no JS (page+POST)": 1000.0}


def _ratio(v: dict[str, float]) -> float:
    """A workload's rate over the one-line route's measured just before it."""
    return v["rate"] / v.get("base_rate", v["rate"])


def report(r: dict[str, Any]) -> list[str]:
    lines = [
        f"{'workloads (page+POST)':<36}{'clients':>8}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'÷ 1-line':>10}{'srv ms/op':>11}"
    ]
    for name, levels in r.items():
        if not isinstance(levels, dict):
            continue
        for level, v in levels.items():
            lines.append(
                f"{name:<36}{level:>8}{v['rate']:>9.1f}{v['p50']:>9.1f}{v['p99']:>9.1f}"
                f"{v['errors']:>8}{_ratio(v):>10.3f}{v['cpu_ms']:>11.2f}"
            )
    for name, (level, least) in TARGETS.items():
        ratio = _ratio(r[name][level])
        lines.append(f"  target {name} ÷ 1-line at {level} >= {least}: {ratio:.3f} "
                     f"{'met' if ratio >= least else 'NOT met'}")  # fmt: skip
    for name, limit in P99_LIMITS.items():
        p99 = r[name][32]["p99"]
        lines.append(f"  target {name} p99 at 32 <= {limit:.0f} ms: {p99:.0f} ms "
                     f"{'met' if p99 <= limit else 'NOT met'}")  # fmt: skip
    nojs_errors = sum(v["errors"] for v in r["submit, no JS (page+POST)"].values())
    lines.append(f"  target no-JS errors (503s) at c <= 32: {nojs_errors} "
                 f"{'met' if nojs_errors == 0 else 'NOT met'}")  # fmt: skip
    for name in TARGETS:  # what an ideal client on other cores would see
        cost = r[name][8]["cpu_ms"] / r[name][8]["base_cpu_ms"]
        lines.append(f"  server CPU of {name} ÷ 1-line's at 8: {1 / cost:.3f}")
    lines.append(f"  /api/ping ÷ 1-line at 8: {_ratio(r['/api/ping'][8]):.2f}")
    met = "met" if r["rss_after"] <= 100 else "NOT met"
    lines.append(f"  worker RSS: {r['rss_start']:.0f} MiB at start, {r['rss_after']:.0f} MiB "
                 f"after the load (target <= 100): {met}")  # fmt: skip
    return lines
