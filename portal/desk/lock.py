"""One change at a time per desk home, across processes.

`portal desk serve` and the CLI may run together on the same home: each
operation that changes the desk (import, reply, invite, export, discard, save,
people, case work) holds this lock only while it runs. Reading needs no lock:
SQLite and the append-only custody log keep readers consistent.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from portal.common.errors import NamedError

WAIT_SECONDS = 120.0


class DeskBusy(NamedError, RuntimeError):
    """Another process kept this home busy for longer than we wait."""

    REASON = "desk_busy"


@contextmanager
def desk_lock(home: Path, wait: float = WAIT_SECONDS) -> Iterator[None]:
    """Hold the home for one operation, waiting up to ``wait`` seconds for another."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(home / ".desk.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() >= deadline:
                    raise DeskBusy(
                        f"{home} has been busy with another desk operation for "
                        f"{wait:.0f} s; try again when it has finished"
                    ) from exc
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
