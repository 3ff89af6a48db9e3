"""Server throughput at 1, 8 and 32 concurrent clients against gunicorn on
127.0.0.1: browser-sealed submissions, case openings (JS and no-JS paths),
each next to a trivial endpoint served by the same gunicorn."""

from __future__ import annotations

import html
import json
import os
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from portal.protocol import codes
from portal.protocol.encoding import b64encode
from portal.protocol.envelopes import seal
from portal.protocol.organization import Organization
from portal.protocol.pow import proof_for
from tests.harness.http import Session
from tests.harness.reporters import Timings, submit

LEVELS = (1, 8, 32)
SECONDS = 4.0
# The clients stand for browsers on machines of their own, but they share this
# process's GIL: a client whose answer has arrived waits for the GIL until the
# one holding it lets go, up to the switch interval (5 ms by default), and that
# wait was counted in its latency. At 1 ms, as the server's workers run, with
# 32 browser clients and the same server in three alternating pairs: client CPU
# 1.8-1.9 ms a flow against 2.0-2.1, and 208-226 flows a second against 188-200.
CLIENT_SWITCH_INTERVAL = 0.001


def _sealed_body(org: Organization, s: Session, offer: dict[str, Any] | None = None) -> bytes:
    """A report's request, with a proof of work solved for session ``s`` (the
    challenge the page carried, or a new one), as the browser sends it."""
    envelope = seal("report", os.urandom(1500), org.encrypt, "browser")
    offer = offer or s.api("POST", "/api/pow").json()
    return json.dumps(
        {
            "envelope": json.loads(envelope.document),
            "mailbox": {
                "index": b64encode(os.urandom(32)),
                "wrapped_key": b64encode(os.urandom(72)),
                "public_key": b64encode(os.urandom(32)),
            },
            "pow": proof_for(offer),
        }
    ).encode()


WORK_IN_PAGE = re.compile(r'data-work="([^"]+)"')


def work_in_page(page: str) -> dict[str, Any]:
    """The challenge the report page carries for its first submission."""
    match = WORK_IN_PAGE.search(page)
    if match is None:
        raise ValueError("no challenge in the page")
    return dict(json.loads(html.unescape(match.group(1))))


def _pool(url: str | list[str], n: int, path: str) -> list[Session]:
    """``n`` sessions that have fetched ``path``; given several hosts, the sessions
    take them in turn (a front sending each browser to one host)."""
    urls = [url] if isinstance(url, str) else url
    sessions = [Session(urls[i % len(urls)]) for i in range(n)]
    threads = [threading.Thread(target=s.get, args=(path,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sessions


def _drive(clients: int, work: Callable[[int, int], bool | None]) -> dict[str, float]:
    """Each client calls work(client, i) until time is up (or work returns None:
    nothing left to send); returns the rate and latencies."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def client(c: int) -> None:
        nonlocal errors
        mine, bad, i = [], 0, 0
        while time.monotonic() < deadline:
            start = time.perf_counter()
            ok = work(c, i)
            if ok is None:
                break
            mine.append(time.perf_counter() - start)
            bad += 0 if ok else 1
            i += 1
        with lock:
            latencies.extend(mine)
            errors += bad

    interval = sys.getswitchinterval()
    sys.setswitchinterval(CLIENT_SWITCH_INTERVAL)
    started = time.monotonic()
    try:
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    elapsed = time.monotonic() - started
    ordered = sorted(latencies)
    return {
        "rate": len(latencies) / elapsed,
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[int(0.99 * (len(ordered) - 1))] * 1000,
        "errors": errors,
        "count": len(latencies),
    }


def fsync_rate(folder: Path, seconds: float = 2.0) -> float:
    """The disk's limit for durable writes: small write + fsync, as fast as it goes."""
    path = folder / "fsync-probe"
    n, started = 0, time.monotonic()
    with open(path, "wb") as handle:
        while time.monotonic() - started < seconds:
            handle.write(os.urandom(2048))
            handle.flush()
            os.fsync(handle.fileno())
            n += 1
    path.unlink()
    return n / (time.monotonic() - started)


def run(url: str, org: Organization) -> dict[str, dict[int, dict[str, float]]]:
    # Cases to open: made the way reporters make them, before any timing.
    made_codes = [submit(Session(url), org, Timings(), f"case {i}") for i in range(64)]
    lookups = [b64encode(codes.derive(c, org.code_salt, org.kdf).lookup) for c in made_codes]
    out: dict[str, dict[int, dict[str, float]]] = {}
    for level in LEVELS:
        for name, figures in _level(url, org, level, made_codes, lookups).items():
            out.setdefault(name, {})[level] = figures
    return out


def submissions(url: str | list[str], org: Organization, level: int) -> dict[str, dict[str, float]]:
    """The trivial endpoint and browser-sealed submissions at ``level`` clients,
    against one host or several in turn."""
    ping = _pool(url, level, "/report")
    return {
        "trivial GET /api/ping": _drive(
            level, lambda c, i: ping[c].request("GET", "/api/ping").status == 200
        ),
        "submit (browser-sealed)": _submit(url, org, level),
    }


def _submit(url: str | list[str], org: Organization, level: int) -> dict[str, float]:
    # A submission spends its page's CSRF token: each one comes with a fresh page
    # fetched beforehand (untimed), as a reporter's browser would have it.
    budget = max(400, level * 80)
    sessions = _pool(url, budget, "/report")
    bodies = [_sealed_body(org, s) for s in sessions]
    counter = iter(range(budget))
    lock = threading.Lock()

    def post(_c: int, _i: int) -> bool | None:
        with lock:
            n = next(counter, None)
        if n is None:
            return None
        s = sessions[n]
        return (
            s.request(
                "POST",
                "/api/reports",
                bodies[n],
                {"Content-Type": "application/json", "X-CSRFToken": s.token},
            ).status
            == 201
        )

    return _drive(level, post)


def _level(
    url: str, org: Organization, level: int, made_codes: list[str], lookups: list[str]
) -> dict[str, dict[str, float]]:
    out = submissions(url, org, level)
    openers = _pool(url, level, "/case")
    out["open case, JS path"] = _drive(
        level,
        lambda c, i: (
            openers[c]
            .api("POST", "/api/case/open", {"lookup": lookups[(c * 7 + i) % len(lookups)]})
            .status
            == 200
        ),
    )
    out["open case, no-JS (Argon2)"] = _drive(
        level,
        lambda c, i: (
            openers[c].form("/case", {"code": made_codes[(c * 5 + i) % len(made_codes)]}).status
            == 200
        ),
    )
    return out


def report(r: dict[str, Any], fsyncs_per_s: float | None = None) -> list[str]:
    lines = [
        f"{'throughput':<28}{'clients':>8}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'vs trivial':>12}"
    ]
    trivial = r["trivial GET /api/ping"]
    for name, levels in r.items():
        for level, v in levels.items():
            ratio = v["rate"] / trivial[level]["rate"]
            lines.append(
                f"{name:<28}{level:>8}{v['rate']:>9.1f}{v['p50']:>9.1f}{v['p99']:>9.1f}"
                f"{v['errors']:>8}{ratio:>12.2f}"
            )
    if fsyncs_per_s:
        best = max(v["rate"] for v in r["submit (browser-sealed)"].values())
        lines.append(
            f"  disk: {fsyncs_per_s:.0f} fsyncs/s on the data dir; a submission makes two "
            f"(blob, then database commit): bound {fsyncs_per_s / 2:.0f}/s, best seen "
            f"{best:.0f}/s (ratio {best / (fsyncs_per_s / 2):.2f})"
        )
    return lines
