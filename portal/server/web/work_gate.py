"""Bounding the server's code derivations (no-JS submissions and case openings).

Each derivation costs 16 MiB and tens of milliseconds of CPU. A fixed number of
slots, shared by every gunicorn worker through lock files in the data dir,
caps how many run at once (so memory and cores stay bounded), and a token
bucket per worker caps the sustained rate. Nothing here looks at who is asking:
no address is used or stored.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from portal.common.errors import NamedError


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

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class WorkGate:
    """At most ``slots`` derivations at once across workers; at most ``max_waiting``
    requests of this worker waiting for one (the rest are told "busy" at once, so
    a flood of no-JS submissions cannot pile up threads and memory)."""

    def __init__(
        self,
        folder: Path,
        slots: int,
        rate: float,
        burst: int,
        wait_seconds: float = 10.0,
        max_waiting: int = 16,
    ) -> None:
        self.folder = folder
        self.slots = slots
        self.bucket = TokenBucket(rate, burst)
        self.wait_seconds = wait_seconds
        self.max_waiting = max_waiting
        self._waiting = 0
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self.bucket.take():
            raise Busy("rate")
        with self._lock:
            if self._waiting >= self.max_waiting:
                raise Busy("queue")
            self._waiting += 1
        try:
            fd = self._claim()
        finally:
            with self._lock:
                self._waiting -= 1
        try:
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _claim(self) -> int:
        """A locked slot file's descriptor, or Busy once ``wait_seconds`` have passed."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            for n in range(self.slots):
                fd = os.open(self.folder / f"slot-{n}", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                return fd
            if time.monotonic() > deadline:
                raise Busy("slots")
            time.sleep(0.02)
