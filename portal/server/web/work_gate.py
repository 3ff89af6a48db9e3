"""Bounding the server's code derivations (no-JS submissions and case openings).

Each derivation costs memory and tens of milliseconds of CPU. A fixed number of
slots caps how many run at once across every worker, so memory and cores stay
bounded; a token bucket per worker caps the sustained rate. Nothing here looks
at who is asking: no address is used or stored.

Slots are shared where the workers can all see them: lock files in the data dir
on one host (SQLite), or PostgreSQL advisory locks when several hosts share one
database, so two hosts together run no more than ``slots`` at once.

Waiting is first come, first served: the requests of a worker wait in a queue,
only the one at its head takes the rate's next token (waiting for it if it is
not yet due) and then looks for a free slot, and each waits at most
``wait_seconds``. So a burst over the rate is served a little later, not
refused. A worker lets at most ``max_waiting`` requests queue; beyond that a
flood is told "busy" at once.

On one host the heads of the workers' queues also take turns by arrival: each
notes when its request came in a small table in shared memory (``_Line``, in
``/dev/shm``: never on disk, gone at reboot), and only the one that came first
may take a free slot, so a slot freed in one worker does not go to that worker's
next request while another worker's reporter has waited longer. A slot freed
elsewhere is seen within ``FILE_POLL``. On PostgreSQL the hosts look every
``POLL`` to ``MAX_POLL`` seconds, and a slot freed in a worker goes to its own
next request.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text

from portal.common.errors import NamedError
from portal.server.shared_table import SharedTable

POLL = 0.005  # first wait for a slot freed by another worker or host; doubles up to
MAX_POLL = 0.05  # this, so a long wait costs the database a look every 50 ms at most
FILE_POLL = 0.002  # on one host a look costs no more than reading memory and a lock file
HEADS = 64  # workers' queues one host's line holds (more are served, unordered)
SILENT = 0.5  # a head that has not looked for this long (hung, stopped, gone) is passed
SHARED_MEMORY = Path("/dev/shm")  # noqa: S108 (tmpfs: memory, not disk)
ADVISORY_SPACE = 0x504F5254  # "PORT": the advisory lock class the portal's slots use


class Busy(NamedError, RuntimeError):
    """No slot or token in time: answer 503 and ask to try again."""

    REASON = "busy"


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        """Take a token: 0.0 if one was there, else how many seconds until the next
        (none taken; ask again then)."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate if self.rate > 0 else float("inf")


class Slots(Protocol):
    """Where the slots live: ``claim`` returns a held slot or None, at once, for the
    head of a worker's queue whose request came at ``arrived`` (monotonic time);
    ``leave`` says that head no longer waits. ``polls`` are the first and longest
    pause between two looks."""

    polls: tuple[float, float]

    def claim(self, arrived: float) -> object | None: ...

    def release(self, held: object) -> None: ...

    def leave(self) -> None: ...


class _Line:
    """The heads of one host's queues, in memory every worker maps: for each, the
    process that owns the entry, when its head's request came (0: none waits) and
    when it last looked (both cleared when it stops waiting). It lives in
    ``/dev/shm`` rather than the data dir: a time when someone was waiting for a
    derivation is not for the disk. Workers in another pid namespace or container
    have a line of their own (and so no order between them and these)."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # one new entry at a time
            kinds = (ctypes.c_int64, ctypes.c_double, ctypes.c_double)
            self.pids, self.arrived, self.looked = SharedTable.in_file(fd, HEADS, kinds).columns
            self.entry = next((n for n in range(HEADS) if not _alive(self.pids[n])), None)
            if self.entry is not None:
                self.pids[self.entry] = os.getpid()
                self.arrived[self.entry] = 0.0
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)  # the mapping holds a copy of fd: unlock first
            os.close(fd)

    def first(self, arrived: float) -> bool:
        """Note that this head waits, and whether no other came before it."""
        me = self.entry
        if me is None:
            return True
        now = time.monotonic()
        self.looked[me] = now
        self.arrived[me] = arrived
        silent = now - SILENT
        return not any(
            theirs > 0 and looked >= silent and (theirs, n) < (arrived, me)
            for n, (theirs, looked) in enumerate(zip(self.arrived[:], self.looked[:], strict=True))
            if n != me
        )

    def leave(self) -> None:
        if self.entry is not None:
            self.arrived[self.entry] = 0.0
            self.looked[self.entry] = 0.0


def line_path(folder: Path) -> Path:
    """Where the line of the workers sharing the slots in ``folder`` lives. It
    outlives them (none knows it is the last): one small file per data dir."""
    name = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:24]
    return SHARED_MEMORY / f"portal-work-line-{name}"


def _line_for(folder: Path) -> _Line | None:
    """The line of the workers sharing the slots in ``folder`` (None where the
    system has no shared memory folder: then heads are served unordered)."""
    if not SHARED_MEMORY.is_dir():
        return None
    return _Line(line_path(folder))


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now: not one of ours
        return False
    return True


class FileSlots:
    """Slots as lock files in a folder every worker of one host shares."""

    polls = (FILE_POLL, FILE_POLL)

    def __init__(self, folder: Path, slots: int) -> None:
        self.folder = folder
        self.slots = slots
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.line = _line_for(folder)

    def claim(self, arrived: float) -> int | None:
        if self.line is not None and not self.line.first(arrived):
            return None  # another worker's head came first: the next free slot is its
        for n in range(self.slots):
            fd = os.open(self.folder / f"slot-{n}", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return fd
        return None

    def release(self, held: object) -> None:
        assert isinstance(held, int)
        os.close(held)  # closing releases the lock

    def leave(self) -> None:
        if self.line is not None:
            self.line.leave()


class AdvisorySlots:
    """Slots as PostgreSQL session advisory locks: shared by every host on the
    database. A held slot keeps its connection; a crashed worker's connection
    closes and its slot frees itself."""

    polls = (POLL, MAX_POLL)

    def __init__(self, engine: Engine, slots: int) -> None:
        self.engine = engine
        self.slots = slots

    def leave(self) -> None:
        pass  # no line between hosts: each looks in turn

    def claim(self, _arrived: float) -> tuple[Connection, int] | None:
        # Autocommit: an advisory lock belongs to the session, not a transaction,
        # so a look for a slot is one round trip per slot and nothing to commit.
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            for n in range(self.slots):
                got = conn.execute(
                    text("SELECT pg_try_advisory_lock(:space, :n)"),
                    {"space": ADVISORY_SPACE, "n": n},
                ).scalar()
                if got:
                    return conn, n
        except BaseException:
            conn.close()
            raise
        conn.close()
        return None

    def release(self, held: object) -> None:
        assert isinstance(held, tuple)
        conn: Connection = held[0]
        n: int = held[1]
        try:
            conn.execute(
                text("SELECT pg_advisory_unlock(:space, :n)"), {"space": ADVISORY_SPACE, "n": n}
            )
        finally:
            conn.close()


class WorkGate:
    """At most ``slots`` derivations at once, served in arrival order."""

    def __init__(
        self,
        slots: Slots,
        rate: float,
        burst: int,
        wait_seconds: float = 10.0,
        max_waiting: int = 64,
    ) -> None:
        self.slots = slots
        self.bucket = TokenBucket(rate, burst)
        self.wait_seconds = wait_seconds
        self.max_waiting = max_waiting
        self._queue: deque[threading.Event] = deque()
        self._lock = threading.Lock()

    @contextmanager
    def slot(self) -> Iterator[None]:
        held = self._wait_in_line()
        try:
            yield
        finally:
            self.slots.release(held)
            self._wake_head()

    def _wait_in_line(self) -> object:
        turn = threading.Event()
        with self._lock:
            if len(self._queue) >= self.max_waiting:
                raise Busy("queue")
            self._queue.append(turn)
            if self._queue[0] is turn:
                turn.set()
        arrived = time.monotonic()
        deadline = arrived + self.wait_seconds
        pause, longest = self.slots.polls
        looking = False
        try:
            if not turn.wait(max(0.0, deadline - time.monotonic())):
                raise Busy("slots")
            # At the head of the line: the next token of the rate is ours (a burst
            # over the rate waits its turn rather than being turned away)...
            while (due := self.bucket.take()) > 0:
                if time.monotonic() + due > deadline:
                    raise Busy("rate")
                time.sleep(due)
            looking = True
            while True:  # ...and then the first free slot
                turn.clear()  # from here, a release in this worker sets it again at once
                held = self.slots.claim(arrived)
                if held is not None:
                    return held
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Busy("slots")
                if not turn.wait(min(pause, remaining)):
                    pause = min(pause * 2, longest)
        finally:
            if looking:
                self.slots.leave()
            with self._lock:
                self._queue.remove(turn)
                if self._queue:
                    self._queue[0].set()

    def _wake_head(self) -> None:
        with self._lock:
            if self._queue:
                self._queue[0].set()


def slots_for(engine: Engine, folder: Path, slots: int) -> Slots:
    """Advisory locks on PostgreSQL (shared by every host), lock files otherwise."""
    if engine.dialect.name == "postgresql":
        return AdvisorySlots(engine, slots)
    return FileSlots(folder, slots)
