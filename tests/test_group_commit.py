"""Writes that wait for SQLite's one writer at the same moment share one commit
(portal/common/db.py, ``Database.joined``), and lose nothing by it: each is stored
or refused on its own, learns its outcome in its own request, and is told only
after the commit that holds it."""

from __future__ import annotations

import contextvars
import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, text
from sqlalchemy.exc import IntegrityError

from portal.common.db import Database, LogNotDurable, WritesStopped, on_commit, on_rollback

WHO = contextvars.ContextVar("who", default="nobody")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'joined.sqlite'}")
    with database.transaction() as s:
        s.execute(text("CREATE TABLE cases (id INTEGER PRIMARY KEY, who TEXT)"))
        s.execute(
            text(
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, case_id INTEGER REFERENCES cases(id))"
            )
        )
    yield database
    database.engine.dispose()


def _commits(db: Database) -> list[int]:
    seen: list[int] = []
    event.listen(db.engine, "commit", lambda _conn: seen.append(1))
    return seen


def _stored(db: Database) -> set[int]:
    with db.reading() as s:
        return set(s.execute(text("SELECT id FROM cases")).scalars())


def _insert(n: int) -> Callable[[Connection], int]:
    def work(s: Connection) -> int:
        s.execute(text("INSERT INTO cases (id, who) VALUES (:n, :who)"), {"n": n, "who": WHO.get()})
        return n

    return work


def _in_threads(db: Database, works: dict[int, Callable[[Connection], Any]]) -> dict[int, Any]:
    """Each write from a thread of its own (a request), while the first one holds
    the writer's turn, so that all the others queue behind it; each thread's
    outcome (its value, or the error it raised)."""
    outcomes: dict[int, Any] = {}
    first_runs, let_go = threading.Event(), threading.Event()
    first = min(works)

    def hold(s: Connection) -> Any:
        first_runs.set()
        assert let_go.wait(30)
        return works[first](s)

    def request(n: int) -> None:
        WHO.set(f"request {n}")
        try:
            outcomes[n] = db.joined(hold if n == first else works[n])
        except Exception as exc:  # the outcome under test
            outcomes[n] = exc

    threads = {n: threading.Thread(target=request, args=(n,)) for n in works}
    threads[first].start()
    assert first_runs.wait(30)
    for n, t in threads.items():
        if n != first:
            t.start()
    deadline = time.monotonic() + 30
    while len(db._group._waiting) < len(works) - 1:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the other writes never queued"
        time.sleep(0.005)
    let_go.set()
    for t in threads.values():
        t.join(30)
    return outcomes


def test_writes_waiting_at_the_same_moment_are_stored_in_one_commit(db: Database) -> None:
    commits = _commits(db)
    outcomes = _in_threads(db, {n: _insert(n) for n in range(1, 13)})
    assert outcomes == {n: n for n in range(1, 13)}
    assert _stored(db) == set(range(1, 13))
    # The first alone, then the eleven that queued behind it together.
    assert len(commits) == 2
    with db.reading() as s:
        rows = {n: who for n, who in s.execute(text("SELECT id, who FROM cases"))}
    # Each ran in its own request's context, not in the one that committed it.
    assert rows == {n: f"request {n}" for n in range(1, 13)}


def test_a_write_that_fails_in_a_shared_commit_undoes_only_its_own(db: Database) -> None:
    def half_then_fail(s: Connection) -> None:
        s.execute(text("INSERT INTO cases (id, who) VALUES (105, 'half')"))
        raise LookupError("refused halfway")

    def clash(s: Connection) -> None:
        s.execute(text("INSERT INTO cases (id, who) VALUES (2, 'again')"))

    works: dict[int, Callable[[Connection], Any]] = {n: _insert(n) for n in (1, 2, 3, 4)}
    works[5] = half_then_fail
    works[6] = clash  # the same key as write 2, which goes before it
    outcomes = _in_threads(db, works)
    assert isinstance(outcomes[5], LookupError)
    assert isinstance(outcomes[6], IntegrityError)
    assert {n: outcomes[n] for n in (1, 2, 3, 4)} == {1: 1, 2: 2, 3: 3, 4: 4}
    assert _stored(db) == {1, 2, 3, 4}


def test_each_write_hears_of_its_outcome_in_its_own_thread(db: Database) -> None:
    heard: dict[int, tuple[str, int]] = {}

    def hooked(n: int, fail: bool) -> Callable[[Connection], None]:
        def work(s: Connection) -> None:
            on_commit(s, lambda: heard.__setitem__(n, ("stored", threading.get_ident())))
            on_rollback(s, lambda: heard.__setitem__(n, ("undone", threading.get_ident())))
            _insert(n)(s)
            if fail:
                raise LookupError(n)

        return work

    works = {n: hooked(n, fail=n == 3) for n in (1, 2, 3, 4)}
    outcomes = _in_threads(db, works)
    assert isinstance(outcomes[3], LookupError)
    assert {n: heard[n][0] for n in works} == {1: "stored", 2: "stored", 3: "undone", 4: "stored"}
    # Four different threads heard: each its own, none the one that committed.
    assert len({heard[n][1] for n in works}) == 4


def test_a_commit_that_fails_fails_every_write_in_it(db: Database) -> None:
    """A commit refused by the database (here a foreign key checked at commit)
    stores none of the writes it held, and each of them hears so."""
    undone: list[int] = []

    def dangling(s: Connection) -> None:
        s.execute(text("PRAGMA defer_foreign_keys = ON"))
        s.execute(text("INSERT INTO notes (id, case_id) VALUES (1, 999)"))

    def hooked(n: int) -> Callable[[Connection], int]:
        def work(s: Connection) -> int:
            on_rollback(s, lambda: undone.append(n))
            return _insert(n)(s)

        return work

    works: dict[int, Callable[[Connection], Any]] = {1: _insert(1), 2: hooked(2), 3: dangling}
    works[4] = hooked(4)
    outcomes = _in_threads(db, works)
    assert outcomes[1] == 1  # alone in the first commit
    for n in (2, 3, 4):
        assert isinstance(outcomes[n], IntegrityError)
    assert sorted(undone) == [2, 4]
    assert _stored(db) == {1}
    with db.reading() as s:
        assert s.execute(text("SELECT count(*) FROM notes")).scalar_one() == 0


def test_a_write_that_fails_alone_stores_nothing_and_the_next_one_goes_through(
    db: Database,
) -> None:
    def half_then_fail(s: Connection) -> None:
        s.execute(text("INSERT INTO cases (id, who) VALUES (7, 'half')"))
        raise LookupError("refused halfway")

    with pytest.raises(LookupError):
        db.joined(half_then_fail)
    assert _stored(db) == set()
    assert db.joined(_insert(8)) == 8
    assert _stored(db) == {8}


def test_a_write_that_makes_sqlite_give_up_the_transaction_stores_none_of_its_batch(
    db: Database,
) -> None:
    """Some failures (a full disk, an I/O error; here a trigger's ROLLBACK) end the
    whole transaction, not one statement: the writes before it in the batch are
    gone too, so none of them may be told it was stored."""
    with db.transaction() as s:
        s.execute(text("CREATE TABLE poison (id INTEGER)"))
        s.execute(
            text(
                "CREATE TRIGGER gone BEFORE INSERT ON poison "
                "BEGIN SELECT RAISE(ROLLBACK, 'the whole transaction is gone'); END"
            )
        )

    def poisoned(s: Connection) -> None:
        s.execute(text("INSERT INTO poison (id) VALUES (1)"))

    works: dict[int, Callable[[Connection], Any]] = {n: _insert(n) for n in (1, 2, 3, 5, 6)}
    works[4] = poisoned
    outcomes = _in_threads(db, works)
    assert outcomes[1] == 1  # alone in the first commit
    for n in (2, 3, 4, 5, 6):
        assert isinstance(outcomes[n], Exception), n
    assert _stored(db) == {1}
    assert db.joined(_insert(7)) == 7


def test_a_write_begun_inside_a_joined_one_is_refused_not_left_waiting(db: Database) -> None:
    def nested_joined(s: Connection) -> None:
        db.joined(_insert(2))

    def nested_transaction(s: Connection) -> None:
        with db.transaction() as inner:
            _insert(3)(inner.connection())

    started = time.monotonic()
    for nested in (nested_joined, nested_transaction):
        with pytest.raises(RuntimeError):
            db.joined(nested)
    assert time.monotonic() - started < 5
    assert db.joined(_insert(4)) == 4
    assert _stored(db) == {4}


def test_a_joined_write_returns_only_once_its_commit_is_on_disk(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch commits without waiting for the disk (so another worker's batch may write
    meanwhile), then fdatasyncs the log itself before anyone in it is answered:
    the durability of ``synchronous=FULL``, with its fsync outside the turn."""
    events: list[str] = []
    event.listen(db.engine, "commit", lambda _conn: events.append("commit"))
    real_fdatasync = os.fdatasync

    def fdatasync(fd: int) -> None:
        real_fdatasync(fd)  # the real one: only watched
        events.append("fdatasync " + Path(os.readlink(f"/proc/self/fd/{fd}")).name)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    for n in (1, 2):
        assert db.joined(_insert(n)) == n
        events.append("returned")
    assert events == ["commit", "fdatasync joined.sqlite-wal", "returned"] * 2
    # Only the batch's connection skips SQLite's own fsync; every other keeps FULL.
    kept = db._group._kept  # type: ignore[union-attr]
    assert kept is not None
    driver = kept.connection.dbapi_connection
    assert driver is not None
    assert driver.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with db.transaction() as s:
        assert s.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


def test_a_log_the_disk_cannot_sync_stops_every_later_write(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed fdatasync may leave pages marked clean that never reached the
    disk, and a later sync would then succeed: the batch is not told it was
    stored, no hook claims an outcome, and no later write is made at all."""
    heard: list[str] = []

    def hooked(c: Connection) -> int:
        on_commit(c, lambda: heard.append("stored"))
        on_rollback(c, lambda: heard.append("undone"))
        return _insert(1)(c)

    def failing_disk(_fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    assert db.joined(_insert(9)) == 9  # the log is open and synced once
    monkeypatch.setattr(os, "fdatasync", failing_disk)
    with pytest.raises(LogNotDurable):
        db.joined(hooked)
    assert heard == []  # committed, perhaps not on disk: neither outcome is claimed
    monkeypatch.undo()  # the disk "recovers": a sync would now succeed
    with pytest.raises(WritesStopped):
        db.joined(_insert(2))
    assert _stored(db) == {1, 9}  # reads go on; nothing more was written


def test_a_symlinked_database_syncs_the_log_sqlite_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite follows a symlinked database to its target and keeps its log there;
    the batch syncs that log, not a path beside the link."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link.sqlite").symlink_to(tmp_path / "real" / "target.sqlite")
    linked = Database(f"sqlite:///{tmp_path / 'link.sqlite'}")
    with linked.transaction() as s:
        s.execute(text("CREATE TABLE cases (id INTEGER PRIMARY KEY, who TEXT)"))
    synced: list[str] = []
    real_fdatasync = os.fdatasync

    def fdatasync(fd: int) -> None:
        real_fdatasync(fd)
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    assert linked.joined(_insert(1)) == 1
    assert synced == [str((tmp_path / "real" / "target.sqlite-wal").resolve())]
    linked.engine.dispose()
