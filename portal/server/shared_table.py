"""A small table of numbers that the worker processes of one host share in memory.

Each column is an array of 8-byte numbers (whole or real), one row per worker:
what it holds (a connection count, a pid) and when it last spoke (a monotonic
time), read by the others to find the least-loaded or earliest live one. The
memory is never on disk: either anonymous, mapped by gunicorn's arbiter before it
forks the workers (``anonymous``), or a file in ``/dev/shm``, a memory file system,
that workers not forked from one another open by name (``in_file``).

Used by the connection balancing (server/balance.py) and by the work gate's line
(server/web/work_gate.py).
"""

from __future__ import annotations

import ctypes
import mmap
import os
from collections.abc import Sequence
from typing import Any

Kind = type[ctypes.c_int64] | type[ctypes.c_double]
CELL = 8  # bytes in each number


class SharedTable:
    """``rows`` rows of ``kinds`` columns over ``memory``; ``columns`` are views
    into it (a write is seen at once by every process that maps it)."""

    def __init__(self, memory: mmap.mmap, rows: int, kinds: Sequence[Kind]) -> None:
        self._memory = memory  # kept alive as long as the views into it
        self.columns: tuple[ctypes.Array[Any], ...] = tuple(
            (kind * rows).from_buffer(memory, n * rows * CELL) for n, kind in enumerate(kinds)
        )

    @classmethod
    def anonymous(cls, rows: int, kinds: Sequence[Kind]) -> SharedTable:
        """In memory of no file: shared with the processes forked after it is made."""
        return cls(mmap.mmap(-1, rows * len(kinds) * CELL), rows, kinds)

    @classmethod
    def in_file(cls, fd: int, rows: int, kinds: Sequence[Kind]) -> SharedTable:
        """In the open file ``fd`` (grown to size if new: the caller holds a lock on
        it meanwhile). The map keeps its own reference: ``fd`` may be closed."""
        size = rows * len(kinds) * CELL
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)
        return cls(mmap.mmap(fd, size), rows, kinds)
