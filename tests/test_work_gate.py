"""The Argon2 work gate: a shared slot limit and a rate bucket, and what a busy reporter sees."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask

from portal.server.app import create_app
from portal.server.config import Config
from portal.server.web.work_gate import SILENT, Busy, FileSlots, WorkGate, slots_for
from tests.harness.web import csrf_token


def test_slots_are_shared_through_the_data_dir(tmp_path: Path) -> None:
    # Two gates on one folder stand for two gunicorn workers.
    first = WorkGate(FileSlots(tmp_path, 1), rate=100, burst=100, wait_seconds=0.1)
    second = WorkGate(FileSlots(tmp_path, 1), rate=100, burst=100, wait_seconds=0.1)
    with first.slot(), pytest.raises(Busy), second.slot():
        pass
    with second.slot():
        pass


def test_the_rate_bucket_empties_and_refills(tmp_path: Path) -> None:
    gate = WorkGate(FileSlots(tmp_path, 4), rate=1000, burst=3)
    for _ in range(3):
        with gate.slot():
            pass
    gate.bucket.tokens = 0
    gate.bucket.rate = 0.0001
    with pytest.raises(Busy), gate.slot():
        pass


def test_a_busy_portal_keeps_the_reporters_words(config: Config) -> None:
    app = create_app(replace(config, derive_rate=1))
    gate: WorkGate = app.extensions["portal"].work_gate
    gate.bucket.tokens = 0
    gate.bucket.rate = 0.0001
    client = app.test_client()
    resp = client.post(
        "/report", data={"csrf_token": csrf_token(client), "what_happened": "my words, kept"}
    )
    assert resp.status_code == 503
    page = resp.get_data(as_text=True)
    assert 'id="busy"' in page and "my words, kept" in page
    # The busy page carries a fresh form token: sending it again once the portal
    # has room goes through (the first token was spent with the first try).
    fresh = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert fresh is not None
    gate.bucket.tokens = 5
    gate.bucket.rate = 1000
    resp = client.post(
        "/report", data={"csrf_token": fresh.group(1), "what_happened": "my words, kept"}
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    gate.bucket.tokens = 0
    gate.bucket.rate = 0.0001
    resp = client.post("/case", data={"csrf_token": csrf_token(client, "/case"), "code": "1234"})
    assert resp.status_code == 503 and "your code still works" in resp.get_data(as_text=True)


def test_the_queue_is_bounded_so_a_flood_cannot_pile_up(tmp_path: Path) -> None:
    """The attack: many no-JS submissions at once; only a few may wait, the rest
    are told "busy" at once instead of holding threads."""
    gate = WorkGate(FileSlots(tmp_path, 1), rate=1000, burst=1000, wait_seconds=5, max_waiting=2)
    results: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with gate.slot():
            inside.set()
            release.wait(5)

    def wait_for_slot() -> None:
        try:
            with gate.slot():
                results.append("served")
        except Busy as exc:
            results.append(str(exc))

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(5)
    waiters = [threading.Thread(target=wait_for_slot) for _ in range(2)]
    for t in waiters:
        t.start()
    time.sleep(0.2)  # both are waiting now
    started = time.monotonic()
    wait_for_slot()  # a third: refused at once, no waiting
    assert results == ["queue"] and time.monotonic() - started < 0.1
    release.set()
    for t in (holder, *waiters):
        t.join(5)
    assert sorted(results) == ["queue", "served", "served"]


def test_waiting_requests_are_served_in_the_order_they_came(tmp_path: Path) -> None:
    """First come, first served: no request overtakes one that waited longer."""
    gate = WorkGate(FileSlots(tmp_path, 1), rate=1000, burst=1000, wait_seconds=10)
    served: list[int] = []
    release = threading.Event()
    inside = threading.Event()

    def hold() -> None:
        with gate.slot():
            inside.set()
            release.wait(5)

    def wait(n: int) -> None:
        with gate.slot():
            served.append(n)
            time.sleep(0.01)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(5)
    waiters = []
    for n in range(8):
        t = threading.Thread(target=wait, args=(n,))
        t.start()
        waiters.append(t)
        time.sleep(0.02)  # each arrives after the one before
    release.set()
    for t in (holder, *waiters):
        t.join(10)
    assert served == list(range(8))


def test_a_slot_freed_by_another_worker_is_taken_by_the_head_of_the_line(
    tmp_path: Path,
) -> None:
    other = WorkGate(FileSlots(tmp_path, 1), rate=1000, burst=1000)
    gate = WorkGate(FileSlots(tmp_path, 1), rate=1000, burst=1000, wait_seconds=5)
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with other.slot():
            inside.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(5)
    threading.Timer(0.2, release.set).start()
    started = time.monotonic()
    with gate.slot():
        waited = time.monotonic() - started
    holder.join(5)
    assert 0.15 < waited < 1.0


def test_on_postgresql_the_slots_are_shared_by_every_gate_on_the_database(
    app: Flask, tmp_path: Path
) -> None:
    """Two gates on one database stand for two hosts: one slot between them."""
    engine = app.extensions["portal"].db.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's; SQLite runs one host (file slots)")
    host_a = WorkGate(slots_for(engine, tmp_path / "a", 1), rate=100, burst=100, wait_seconds=0.2)
    host_b = WorkGate(slots_for(engine, tmp_path / "b", 1), rate=100, burst=100, wait_seconds=0.2)
    with host_a.slot(), pytest.raises(Busy), host_b.slot():
        pass
    with host_b.slot():
        pass


def test_a_burst_over_the_rate_waits_its_turn_instead_of_being_refused(tmp_path: Path) -> None:
    """Issue 20: the rate turned ordinary load into 503s, even for one client
    sending one form after another. Beyond the burst, each waits for its token."""
    gate = WorkGate(FileSlots(tmp_path, 1), rate=50, burst=1, wait_seconds=2)
    started = time.monotonic()
    for _ in range(6):
        with gate.slot():
            pass
    elapsed = time.monotonic() - started
    assert 5 / 50 * 0.9 <= elapsed < 1.5  # five waited about 20 ms each; none refused


def test_a_worker_freeing_a_slot_does_not_pass_it_to_its_own_queue_first(
    tmp_path: Path,
) -> None:
    """Issue 20's no-JS tail: a slot freed in a worker went at once to that worker's
    next request, while another worker's earlier one only looked every few
    milliseconds. Arrival order holds across the workers of a host."""
    worker_a = WorkGate(FileSlots(tmp_path, 1), rate=1000, burst=1000, wait_seconds=5)
    worker_b = WorkGate(FileSlots(tmp_path, 1), rate=1000, burst=1000, wait_seconds=5)
    served: list[str] = []
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with worker_a.slot():
            inside.set()
            release.wait(5)

    def ask(gate: WorkGate, name: str) -> None:
        with gate.slot():
            served.append(name)

    def waiting(gate: WorkGate) -> None:  # its head has taken its place in the line
        line = gate.slots.line  # type: ignore[attr-defined]
        assert line is not None
        deadline = time.monotonic() + 5
        while line.arrived[line.entry] == 0 and time.monotonic() < deadline:
            time.sleep(0.001)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(5)
    earlier = threading.Thread(target=ask, args=(worker_b, "b, came first"))
    earlier.start()
    waiting(worker_b)
    later = threading.Thread(target=ask, args=(worker_a, "a, came later"))
    later.start()
    waiting(worker_a)  # both wait: b's head looks every few ms, a's is woken at once
    release.set()
    for t in (holder, earlier, later):
        t.join(5)
    assert served == ["b, came first", "a, came later"]


def test_a_head_that_stopped_looking_does_not_hold_up_the_line(tmp_path: Path) -> None:
    """A worker that hangs or dies while its request waits must not keep every
    other worker's reporters waiting: after SILENT seconds it is passed over."""
    gone = FileSlots(tmp_path, 1)
    gate = WorkGate(FileSlots(tmp_path, 1), rate=1000, burst=1000, wait_seconds=SILENT / 10)
    line = gone.line
    assert line is not None and line.entry is not None
    assert line.first(time.monotonic() - 5)  # came first, and looked just now...
    with pytest.raises(Busy), gate.slot():  # ...so it keeps its place
        pass
    line.looked[line.entry] = time.monotonic() - SILENT - 1  # ...then stopped looking
    with gate.slot():
        pass


def test_the_line_keeps_no_time_once_nobody_waits(tmp_path: Path) -> None:
    """When a no-JS derivation ran is not for anyone to read back later: the line
    is in memory, and a head that got its slot leaves no time behind."""
    gate = WorkGate(FileSlots(tmp_path, 1), rate=1000, burst=1000)
    with gate.slot():
        pass
    line = gate.slots.line  # type: ignore[attr-defined]
    assert line is not None and line.entry is not None
    assert (line.arrived[line.entry], line.looked[line.entry]) == (0.0, 0.0)
    assert not list(tmp_path.rglob("line*"))  # nothing of it in the data dir
