"""Database engine and sessions (SQLAlchemy), for the server and the desk alike.

SQLite is the embedded default; PostgreSQL (psycopg 3) is the engine for several
hosts. ``make test`` runs the storage and web tests on both.

SQLite has one writer at a time. Left to itself, a writer that finds the lock
taken sleeps in SQLite's busy handler, in steps of up to 100 ms, and a
transaction that began by reading can fail when it tries to write. So writes
take turns here first: a lock per process and a lock file per database, both
waited on in the kernel and woken the moment the writer before finishes, and
each write transaction starts with ``BEGIN IMMEDIATE``. Reads never wait (WAL).
Durability is unchanged: a commit is on disk before anyone hears it was stored,
by ``synchronous=FULL`` (one fsync per commit) or, for the joined writes below,
by one fdatasync of the log per batch, once the batch has given up the turn
(``_Log``).

The writes every request makes (a report, a message, a session, a spent form)
go through :meth:`Database.joined`: on SQLite, the requests that wait for the
turn at the same moment share it, each in a savepoint of one transaction that
commits once for all of them (group commit). Each request is answered only after
that commit, so what it was told was stored is on disk; one that fails is rolled
back to its savepoint alone, and the others go on. A joined write is given a Core
connection, not an ORM session: the batch is held in the one writer's turn, so
it runs on a connection kept for it, with the transaction and savepoints given
to the driver directly (an ORM session around each batch cost more than the
statements in it).
"""

from __future__ import annotations

import contextvars
import errno
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

BUSY_TIMEOUT = 30  # seconds SQLite waits for a lock another connection holds


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL, foreign keys, full fsync and a busy timeout,
    and begins each transaction as its connection asks (``sqlite_begin``)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT})

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
                conn.connection.dbapi_connection.execute(f"BEGIN {mode}")

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


# Where a write happens: an ORM session's transaction (``Database.transaction``)
# or a joined write's connection (``Database.joined``).
Tx = Session | Connection


def connection_of(t: Tx) -> Connection:
    """The connection a transaction's statements run on."""
    return t if isinstance(t, Connection) else t.connection()


@dataclass
class _Hooks:
    on_commit: list[Callable[[], None]] = field(default_factory=list)
    on_rollback: list[Callable[[], None]] = field(default_factory=list)


# The hooks of the joined write running in this context (see Database.joined).
_JOINED_HOOKS: contextvars.ContextVar[_Hooks | None] = contextvars.ContextVar(
    "joined_hooks", default=None
)


def on_commit(t: Tx, then: Callable[[], None]) -> None:
    """Run ``then`` once the transaction ``t`` is in commits (never if it rolls back)."""
    if isinstance(t, Session):
        t.info.setdefault("on_commit", []).append(then)
    else:
        _joined_hooks().on_commit.append(then)


def on_rollback(t: Tx, then: Callable[[], None]) -> None:
    """Run ``then`` if the transaction ``t`` is in rolls back (never if it commits)."""
    if isinstance(t, Session):
        t.info.setdefault("on_rollback", []).append(then)
    else:
        _joined_hooks().on_rollback.append(then)


def _joined_hooks() -> _Hooks:
    hooks = _JOINED_HOOKS.get()
    if hooks is None:  # a connection outside joined work: no commit would run them
        raise RuntimeError("hooks on a connection are for joined writes (Database.joined)")
    return hooks


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


class Prepared:
    """A Core statement compiled once for each engine (and each set of columns it
    is given) and run on the driver's own cursor, in the caller's connection and
    transaction. SQLAlchemy's execution of a prebuilt statement costs about 80 µs
    here, the driver's about 11: this is for the few statements every request
    makes (its session, spent tokens, a report's rows), many of them inside the
    one writer's turn. Values are bound as SQLAlchemy binds them (its bind
    processors: dates as SQLite stores them); results come back as the driver
    gives them, so it suits statements over bytes, text and integers."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._built: dict[tuple[str, frozenset[str]], _Built] = {}

    def _for(self, dialect: Dialect, keys: frozenset[str]) -> _Built:
        built = self._built.get((dialect.name, keys))
        if built is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=sorted(keys))
            assert isinstance(compiled, SQLCompiler)
            if compiled.insert_prefetch or compiled.update_prefetch:
                # Python-side defaults are filled in by SQLAlchemy's execution only.
                raise ValueError("a Prepared statement must be given every column")
            order = compiled.positiontup
            processors = {k: p for k, p in compiled._bind_processors.items() if callable(p)}
            built = _Built(compiled.string, order, processors)
            self._built[(dialect.name, keys)] = built
        return built

    def _run(self, c: Connection | Reader, params: Mapping[str, Any]) -> Any:
        if isinstance(c, Reader):
            driver, dialect = c.driver, c.dialect
        else:
            driver, dialect = c.connection.dbapi_connection, c.dialect
        built = self._for(dialect, frozenset(params))
        process = built.processors
        bound = {k: process[k](v) if k in process else v for k, v in params.items()}
        cursor = driver.cursor()
        values = bound if built.order is None else [bound[k] for k in built.order]
        driver_error = dialect.loaded_dbapi.Error
        try:
            cursor.execute(built.sql, values)  # named (psycopg) or positional (SQLite)
        except driver_error as exc:
            cursor.close()
            # As SQLAlchemy would raise it (IntegrityError, OperationalError...), so
            # callers that refuse a clash see the same error on either path; the
            # values (ciphertext, digests) are kept out of its message.
            raise DBAPIError.instance(
                built.sql, values, exc, driver_error, hide_parameters=True, dialect=dialect
            ) from exc
        return cursor

    def first(self, c: Connection | Reader, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row the statement gives back, if any."""
        cursor = self._run(c, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else tuple(row)

    def count(self, c: Connection | Reader, params: Mapping[str, Any]) -> int:
        """Run it; how many rows it changed."""
        cursor = self._run(c, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()


@dataclass(frozen=True)
class Reader:
    """A driver connection that only reads, kept by one thread (SQLite's lone reads:
    see :meth:`Database.reading_rows`)."""

    driver: Any
    dialect: Dialect


@dataclass(frozen=True)
class _Built:
    sql: str
    order: list[str] | None  # the parameters' order, for positional drivers
    processors: Mapping[str, Callable[[Any], Any]]


T = TypeVar("T")
Work = Callable[[Connection], Any]


@dataclass
class _Joined:
    """One request's write, waiting for (or done in) a shared commit."""

    work: Work
    context: contextvars.Context  # the request's own (Flask's session and g)
    done: bool = False
    value: Any = None
    error: BaseException | None = None
    hooks: _Hooks = field(default_factory=_Hooks)


class _GroupCommit:
    """Requests' writes joined into one SQLite transaction and one commit.

    The first request to arrive leads: it takes the write turn, then runs every
    write waiting at that moment (its own among them), each in the context of the
    request it belongs to and in a savepoint of its own, and commits once. The
    others sleep meanwhile and are woken with their outcome. While one batch
    commits the next gathers, so the fsync, the turn's hand-over and SQLite's
    lock are paid once per batch, and a waiting request holds no core.

    There is one leader at a time, and it writes on a connection kept for the
    leaders (``_kept``), whose transaction and savepoints it gives to the driver
    directly: the batch holds the turn, so every microsecond in it is paid by
    every request waiting for the turn, in this process and the others."""

    BATCH = 64

    def __init__(self, turns: _WriteTurns, writers: Engine) -> None:
        self._turns = turns
        self._writers = writers
        self._kept: Connection | None = None
        self._log: _Log | None = None  # the kept connection's write-ahead log
        self._changed = threading.Condition()
        self._waiting: list[_Joined] = []
        self._leading = False

    def run(self, work: Callable[[Connection], T]) -> T:
        if self._log is not None:
            self._log.refuse_if_failed()
        job = _Joined(work, contextvars.copy_context())
        with self._changed:
            self._waiting.append(job)
            while self._leading and not job.done:
                self._changed.wait()
            lead = not job.done
            self._leading = self._leading or lead
        if lead:
            try:
                while not job.done:
                    self._commit_batch()
            finally:
                with self._changed:
                    self._leading = False
                    self._changed.notify_all()
        # Its hooks run in the request's own thread, once the outcome is known.
        for then in job.hooks.on_rollback if job.error is not None else job.hooks.on_commit:
            then()
        if job.error is not None:
            raise job.error
        return job.value  # type: ignore[no-any-return]

    def _commit_batch(self) -> None:
        batch: list[_Joined] = []
        try:
            with self._turns.turn():
                batch = self._take()  # once the turn is ours: those who came meanwhile join
                if self._log is not None:
                    self._log.refuse_if_failed()
                self._store(batch)
            # Outside the turn (other processes write meanwhile), the batch's commit
            # goes on disk: the write-ahead log holds it and all before it.
            assert self._log is not None  # opened with the connection that committed
            self._log.sync()
        except BaseException as exc:  # no turn, no commit, or no fsync
            batch = batch or self._take()
            for job in batch:
                if isinstance(exc, LogNotDurable):
                    job.hooks = _Hooks()  # committed, but maybe not on disk: neither hook
                if job.error is None:
                    job.error = exc
        finally:
            with self._changed:
                for job in batch:
                    job.done = True
                self._changed.notify_all()

    def _connect(self) -> Connection:
        """The leaders' connection: out of the pool (it is never given back), and
        committing with ``synchronous=NORMAL``, so that SQLite's commit writes the
        log without waiting for the disk, and the log's fdatasync (``_Log.sync``) is paid
        after the turn is given up, before any request in the batch is answered.
        SQLite keeps a WAL database consistent this way (it syncs the log's header
        when it starts it again, and the log before every checkpoint); the
        fdatasync is what makes each commit durable, as FULL would have."""
        c = self._writers.connect()
        c.detach()
        driver = c.connection.dbapi_connection
        assert driver is not None
        driver.execute("PRAGMA synchronous=NORMAL")
        # The file SQLite itself opened (a symlinked path is followed to its target,
        # and the log is kept beside the target).
        main = next(row[2] for row in driver.execute("PRAGMA database_list") if row[1] == "main")
        driver.execute("SELECT count(*) FROM sqlite_master").fetchall()  # the log exists now
        failed = None if self._log is None else self._log.failed
        try:
            # Opened before this connection writes anything: a failed write-back of
            # its frames is then reported to this descriptor, whoever syncs first.
            log = _Log(Path(main).resolve().with_name(Path(main).resolve().name + "-wal"), failed)
        except OSError:
            c.close()  # nothing written: an ordinary failure, not a failed sync
            raise
        self._log = log
        return c

    def _take(self) -> list[_Joined]:
        with self._changed:
            batch = self._waiting[: self.BATCH]
            del self._waiting[: self.BATCH]
        return batch

    def _store(self, batch: list[_Joined]) -> None:
        """One transaction for the batch. A write alone needs no savepoint: if it
        fails, the whole transaction is rolled back. After any other failure the
        kept connection is closed, and the next batch starts on a new one."""
        alone = len(batch) == 1
        c = self._kept if self._kept is not None else self._connect()
        self._kept = None
        try:
            with suppress(_Undo), c.begin():  # BEGIN IMMEDIATE (make_engine's listener)
                driver = c.connection.dbapi_connection  # SQLite's own (detached: see _connect)
                for job in batch:
                    job.context.run(_attempt, c, driver, job, not alone)
                    # Some failures (a full disk, an I/O error) make SQLite give up
                    # the whole transaction, not one statement: the writes before
                    # this one are gone too, and the next savepoint would begin a
                    # new one.
                    if not getattr(driver, "in_transaction", True):
                        raise TransactionLost("the database gave up the shared transaction")
                if alone and batch[0].error is not None:
                    raise _Undo  # out of c.begin(), which rolls back
        except BaseException:
            with suppress(Exception):  # in a state nobody knows: never used again
                c.invalidate()
                c.close()
            raise
        self._kept = c  # only once its transaction ended cleanly


class _Log:
    """A write-ahead log to fdatasync, on a descriptor opened before the connection
    that writes it writes anything, and kept as long as it: Linux reports a failed
    write-back once to each descriptor open when it failed, and to one opened
    later only if nobody saw it yet. The log file stays the same while that
    connection is open (SQLite deletes it only when the last one closes).

    A failed sync is final: the pages it could not write may be marked clean and
    never written, and the log's later frames would be lost behind them. So from
    then on every joined write of this Database is refused (WritesStopped), as
    PostgreSQL stops on a failed fsync."""

    def __init__(self, path: Path, failed: OSError | None) -> None:
        self.path = path
        self.failed = failed
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._lock = threading.Lock()

    def refuse_if_failed(self) -> None:
        if self.failed is not None:
            raise WritesStopped("the disk failed to sync the database's log") from self.failed

    def sync(self) -> None:
        with self._lock:
            if self.failed is not None:  # after a commit made since: may not be on disk
                raise LogNotDurable("the disk failed to sync the database's log") from self.failed
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                self.failed = exc
                logging.getLogger(__name__).critical(
                    "The disk failed to sync the database's log (%s): this worker stores "
                    "nothing more until it is restarted on a sound disk.",
                    errno.errorcode.get(exc.errno or 0, "unknown error"),
                )
                raise LogNotDurable("the disk failed to sync the database's log") from exc

    def __del__(self) -> None:
        with suppress(OSError, AttributeError):  # AttributeError: the open failed
            os.close(self._fd)


class WritesStopped(Exception):
    """A sync of the log failed earlier in this process: no joined write is made
    (see ``_Log``). Nothing of this one was written."""


class LogNotDurable(Exception):
    """A batch's commit could not be put on disk: its writes were committed but may
    not survive a power cut, so none of its requests is told it was stored (and no
    hook runs: the outcome is unknown). Every later joined write is refused too."""


class TransactionLost(Exception):
    """The database rolled back a shared transaction by itself: none of its
    writes was stored, and each of them is told so."""


class _Undo(Exception):
    """Roll back a transaction that raised nothing (its one write failed alone)."""


# Set in the thread running a batch's writes: a write begun from inside one would
# wait for the batch that holds it, for ever.
_IN_BATCH = threading.local()


def _refuse_nested() -> None:
    if getattr(_IN_BATCH, "on", False):
        raise RuntimeError("a write inside a joined write: use the transaction it was given")


def _attempt(c: Connection, driver: Any, job: _Joined, savepoint: bool) -> None:
    """One request's write inside a shared transaction (run in the request's own
    context): in a savepoint, so that if it raises only its own statements are
    undone. A savepoint that cannot be made or undone fails the whole batch."""
    _JOINED_HOOKS.set(job.hooks)
    _IN_BATCH.on = True
    try:
        if savepoint:
            driver.execute("SAVEPOINT joined")
        try:
            job.value = job.work(c)
        except BaseException as exc:
            job.error = exc
            if savepoint:
                driver.execute("ROLLBACK TO joined")
        if savepoint:
            driver.execute("RELEASE joined")
    finally:
        _IN_BATCH.on = False


class Database:
    """The engine and a session factory; ``transaction()`` is one state change."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._turns: _WriteTurns | None = None
        self._writers = self._sessions
        self._group: _GroupCommit | None = None
        self._lone_reads = self.engine
        self._readers: threading.local | None = None
        database = make_url(url).database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            self._turns = _turns_for(Path(database))
            immediate = self.engine.execution_options(sqlite_begin="IMMEDIATE")
            self._writers = sessionmaker(immediate, expire_on_commit=False)
            self._group = _GroupCommit(self._turns, immediate)
            self._readers = threading.local()
        if self.engine.dialect.name == "sqlite":
            self._lone_reads = self.engine.execution_options(sqlite_begin="NONE")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One atomic unit of work: committed whole, or rolled back whole."""
        _refuse_nested()
        turn = self._turns.turn() if self._turns else nullcontext()
        with turn, self._writers() as session, session.begin():
            yield session

    def joined(self, work: Callable[[Connection], T]) -> T:
        """``work`` as one atomic unit (committed whole, or rolled back whole, and
        its error raised), sharing its commit with the requests writing at the same
        moment (group commit, on SQLite; see the module's docstring). ``work`` is
        given a Core connection, and may set ``on_commit``/``on_rollback`` hooks on
        it. For short writes that touch nothing but ``work``'s transaction: a write
        begun inside it (``transaction()`` or ``joined()``) is refused
        (RuntimeError), as it would wait for the batch that holds it."""
        _refuse_nested()
        if self._group is not None:
            return self._group.run(work)
        hooks = _Hooks()
        token = _JOINED_HOOKS.set(hooks)
        try:
            with self.transaction() as s:
                try:
                    return work(s.connection())
                finally:  # the session runs them once its transaction ends
                    s.info.setdefault("on_commit", []).extend(hooks.on_commit)
                    s.info.setdefault("on_rollback", []).extend(hooks.on_rollback)
        finally:
            _JOINED_HOOKS.reset(token)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def reading_rows(self) -> Iterator[Connection | Reader]:
        """Where to run a lone read (``Prepared``), for the reads every request makes
        (its session, a spent token): no ORM session to build and tear down, and on
        SQLite no BEGIN, the lone statement being its own transaction. On an SQLite
        file, each thread keeps a driver connection of its own for them, outside the
        pool: taking one from the pool and giving it back cost more than the read."""
        if self._readers is None:
            with self._lone_reads.connect() as conn:
                yield conn
            return
        reader: Reader | None = getattr(self._readers, "reader", None)
        if reader is None:
            reader = self._readers.reader = self._new_reader()
        yield reader

    def _new_reader(self) -> Reader:
        dialect = self.engine.dialect
        args, kwargs = dialect.create_connect_args(self.engine.url)
        driver = dialect.connect(*args, **{**kwargs, "timeout": BUSY_TIMEOUT})
        driver.isolation_level = None  # each statement its own (read) transaction
        driver.execute("PRAGMA query_only=ON")  # it never writes, whatever it is given
        driver.execute("PRAGMA cache_size=-256")  # point reads: a small page cache
        return Reader(driver, dialect)
