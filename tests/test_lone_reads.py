"""The reads every request makes (its session, a spent token) run on a driver
connection each thread keeps for them (portal/common/db.py, ``reading_rows``):
they must see every write committed before them, never write, and never take
connections from the pool the writers need."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, bindparam, insert, select
from sqlalchemy.exc import OperationalError

from portal.common.db import Database, Prepared

_META = MetaData()
_NOTES = Table("notes", _META, Column("id", Integer, primary_key=True), Column("body", LargeBinary))
_READ = Prepared(select(_NOTES.c.body).where(_NOTES.c.id == bindparam("id")))
_WRITE = Prepared(insert(_NOTES))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'reads.sqlite'}")
    _META.create_all(database.engine)
    yield database
    database.engine.dispose()


def _read(db: Database, note: int) -> bytes | None:
    with db.reading_rows() as c:
        row = _READ.first(c, {"id": note})
    return None if row is None else bytes(row[0])


def test_a_lone_read_sees_what_was_committed_just_before_it(db: Database) -> None:
    assert _read(db, 1) is None  # the thread's reader is open, and has read once
    for n in range(1, 6):
        row = {"id": n, "body": b"%d" % n}
        db.joined(lambda c: _WRITE.count(c, row))  # noqa: B023 (run at once)
        assert _read(db, n) == row["body"]  # no snapshot held over from the read before


def test_a_lone_read_cannot_write(db: Database) -> None:
    with db.reading_rows() as c, pytest.raises(OperationalError):
        _WRITE.count(c, {"id": 9, "body": b"smuggled"})
    assert _read(db, 9) is None


def test_lone_reads_keep_one_connection_per_thread_outside_the_pool(db: Database) -> None:
    seen: list[object] = []

    def reads() -> None:
        for _ in range(3):
            with db.reading_rows() as c:
                seen.append(c)
                _READ.first(c, {"id": 1})

    threads = [threading.Thread(target=reads) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 20  # one each, kept across its reads
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    # The writers' pool is whole: a write still gets a connection at once.
    db.joined(lambda c: _WRITE.count(c, {"id": 1, "body": b"after"}))
    assert _read(db, 1) == b"after"
