"""What a flood of junk costs: the attacker (proofs of work, the no-JS work gate)
and the desk (importing, setting aside and discarding what never verifies).

Run against a portal with its shipped defaults. The junk is the cheapest kind
that has the right shape: a report envelope of random bytes with a fresh key.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import Any

from portal.desk import cases, keystore
from portal.desk.inbox import discard_items
from portal.desk.store import DeskStore
from portal.protocol.encoding import b64encode
from tests.harness.http import Session
from tests.harness.sealing import browser_style_request

JUNK = 200


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def js_flood(url: str, org: Any, n: int = JUNK) -> dict[str, float]:
    """One attacker thread posting ``n`` junk reports, each with a solved proof of work."""
    accepted, cpu0, started = 0, _cpu(), time.perf_counter()
    s = Session(url)
    for _ in range(n):
        s.get("/report")
        _, body = browser_style_request(org, "junk")
        body["envelope"]["body"] = b64encode(os.urandom(1024 + 40))
        accepted += s.paid("/api/reports", body).status == 201
    seconds = time.perf_counter() - started
    return {
        "accepted": accepted,
        "per_s": accepted / seconds,
        "attacker_cpu_ms": (_cpu() - cpu0) * 1000 / n,
    }


def nojs_flood(url: str, n: int = JUNK) -> dict[str, float]:
    """One attacker thread posting ``n`` no-JS reports (the server seals each one)."""
    accepted = busy = 0
    started = time.perf_counter()
    s = Session(url)
    for _ in range(n):
        s.get("/report")
        status = s.form("/report", {"what_happened": "junk"}).status
        accepted += status == 200
        busy += status == 503
    seconds = time.perf_counter() - started
    return {"accepted": accepted, "busy": busy, "per_s": accepted / seconds}


def desk_cost(live: Any, home: Path, tmp: Path) -> dict[str, float]:
    """Carry everything to a desk: import (each junk item fails its checks and is set
    aside), then discard it all; per junk item."""
    inbox = tmp / "flood-inbox.tar"
    out = live.portal("export-inbox", str(inbox))
    assert out.returncode == 0, out.stderr
    keys = keystore.unlock(home, "bench")
    store = DeskStore(tmp / "flood-desk")
    started = time.perf_counter()
    result = cases.import_inbox(store, keys, inbox)
    import_s = time.perf_counter() - started
    started = time.perf_counter()
    discard_items(store, [d.id for d in store.damaged()], "bench")
    discard_s = time.perf_counter() - started
    junk = max(1, result.damaged)
    return {
        "damaged": result.damaged,
        "kept": result.new,
        "import_ms_per_item": import_s * 1000 / junk,
        "discard_ms_per_item": discard_s * 1000 / junk,
        "inbox_kb_per_item": inbox.stat().st_size / 1024 / (junk + result.new),
    }


def report(r: dict[str, Any]) -> list[str]:
    js, nojs, desk = r["js"], r["nojs"], r["desk"]
    return [
        f"flood of junk ({JUNK} of each kind, one attacker thread, shipped defaults)",
        f"  JS path, proof of work: {js['per_s']:.1f} junk/s accepted; "
        f"{js['attacker_cpu_ms']:.0f} ms of attacker CPU each "
        f"(a reporter's browser: {r['browser_pow_ms']:.0f} ms without JIT)",
        f"  no-JS path, work gate: {nojs['per_s']:.1f} junk/s accepted, "
        f"{nojs['busy']:.0f} answered busy",
        f"  desk: {desk['import_ms_per_item']:.2f} ms to import and set aside each JS junk "
        f"item, {desk['discard_ms_per_item']:.3f} ms to discard it; "
        f"{desk['inbox_kb_per_item']:.1f} KB of inbox each",
        f"  no-JS junk is sealed by the server, so it arrives as {desk['kept']:.0f} well-formed "
        "report(s) for staff to read and close: the work gate is what bounds it",
        json.dumps({"flood": {k: v for k, v in r.items() if k != "browser_pow_ms"}}),
    ]
