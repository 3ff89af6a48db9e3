"""One desk process per home: a second `desk serve` (or a command while one runs) is refused."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from portal.common.errors import NamedError


class DeskBusy(NamedError, RuntimeError):
    """Another desk process holds this home."""

    REASON = "desk_busy"


@contextmanager
def desk_lock(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(home / ".desk.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise DeskBusy(
                f"{home} is in use by another desk process (is `portal desk serve` running?)"
            ) from exc
        yield
    finally:
        os.close(fd)
