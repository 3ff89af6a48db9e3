"""Database engine and sessions (SQLAlchemy), for the server and the desk alike.

SQLite is the embedded default; PostgreSQL (psycopg 3) is the engine for several
hosts. ``make test`` runs the storage and web tests on both.

SQLite has one writer at a time. Left to itself, a writer that finds the lock
taken sleeps in SQLite's busy handler, in steps of up to 100 ms, and a
transaction that began by reading can fail when it tries to write. So writes
take turns here first: a lock per process and a lock file per database, both
waited on in the kernel and woken the moment the writer before finishes, and
each write transaction starts with ``BEGIN IMMEDIATE``. Reads never wait (WAL).
Durability is unchanged: ``synchronous=FULL``, one fsync per commit.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL, foreign keys, full fsync and a busy timeout,
    and begins each transaction as its connection asks (``sqlite_begin``)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # BEGIN is emitted below, not by the driver
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            if mode != "NONE":  # NONE: each statement its own (a lone read's) transaction
                conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, pool_pre_ping=True)


class _WriteTurns:
    """One SQLite writer at a time across threads and processes, in the kernel's
    wait queue rather than SQLite's sleeping back-off. One per database file in a
    process (``_turns_for``), so two ``Database`` objects on one file share it and
    a thread already writing is not made to wait for itself."""

    def __init__(self, database: Path) -> None:
        self._threads = threading.Lock()
        self._path = database.with_name(database.name + ".writer")
        self._mine = threading.local()

    @contextmanager
    def turn(self) -> Iterator[None]:
        if getattr(self._mine, "held", False):  # already this thread's turn
            yield
            return
        with self._threads:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._mine.held = True
                yield
            finally:
                self._mine.held = False
                os.close(fd)  # closing releases the lock


_ALL_TURNS: dict[Path, _WriteTurns] = {}
_ALL_TURNS_LOCK = threading.Lock()


def _turns_for(database: Path) -> _WriteTurns:
    with _ALL_TURNS_LOCK:
        return _ALL_TURNS.setdefault(database.resolve(), _WriteTurns(database.resolve()))


def on_commit(s: Session, then: Callable[[], None]) -> None:
    """Run ``then`` once the transaction ``s`` is in commits (never if it rolls back)."""
    s.info.setdefault("on_commit", []).append(then)


def on_rollback(s: Session, then: Callable[[], None]) -> None:
    """Run ``then`` if the transaction ``s`` is in rolls back (never if it commits)."""
    s.info.setdefault("on_rollback", []).append(then)


# Once for every session (an instance's own listener costs more to add than its
# whole statement): the hooks live in the session's ``info``.
@event.listens_for(Session, "after_commit")
def _committed(s: Session) -> None:
    s.info.pop("on_rollback", None)
    for then in s.info.pop("on_commit", ()):
        then()


@event.listens_for(Session, "after_rollback")
def _rolled_back(s: Session) -> None:
    s.info.pop("on_commit", None)
    for then in s.info.pop("on_rollback", ()):
        then()


class Database:
    """The engine and a session factory; ``transaction()`` is one state change."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._turns: _WriteTurns | None = None
        self._writers = self._sessions
        self._row_writer = self.engine
        self._lone_reads = self.engine
        database = make_url(url).database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            self._turns = _turns_for(Path(database))
            immediate = self.engine.execution_options(sqlite_begin="IMMEDIATE")
            self._writers = sessionmaker(immediate, expire_on_commit=False)
            self._row_writer = immediate
        if self.engine.dialect.name == "sqlite":
            self._lone_reads = self.engine.execution_options(sqlite_begin="NONE")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One atomic unit of work: committed whole, or rolled back whole."""
        turn = self._turns.turn() if self._turns else nullcontext()
        with turn, self._writers() as session, session.begin():
            yield session

    @contextmanager
    def writing_rows(self) -> Iterator[Connection]:
        """``transaction()`` for Core statements alone (a session's own write, made
        on most page views): the same turn and commit, without an ORM session."""
        turn = self._turns.turn() if self._turns else nullcontext()
        with turn, self._row_writer.begin() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def reading_rows(self) -> Iterator[Connection]:
        """A plain connection, for the one read every request makes (its session):
        a Core statement, without an ORM session to build and tear down, and on
        SQLite without a BEGIN: the lone statement is its own transaction."""
        with self._lone_reads.connect() as conn:
            yield conn
