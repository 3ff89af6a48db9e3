"""gunicorn's threaded worker, taking its share of connections and no more.

Browsers, Tor's onion service and load tools keep each connection open for many
requests, and a gthread worker serves a connection for as long as it lives. The
workers race for each new one, so a burst of them often lands unevenly (24 on one
worker and 8 on the other, measured with 32 clients): one core then runs a queue
three times as long as the other's, and every reporter on it waits longer. Each
worker here publishes how many connections it holds on a board the arbiter shares
with all of them, and, once it has a connection for each of its threads, stops
accepting while it holds more than the least-loaded live worker; that one
accepts meanwhile.

A worker counts as live while it says so at least every ``STALE_AFTER`` seconds
(its main loop wakes every ``BEAT`` at least): one that hangs, stops or dies
drops out of the comparison, and the others take everything. Until then, a
worker at or over its share waits for it: a new connection can wait up to
``STALE_AFTER`` when the least-loaded worker hangs. Nothing here looks at who is
connecting.

Not balanced: gunicorn's ``reuse_port`` (each worker has a socket of its own, so
a worker holding back would leave its connections waiting: it serves as plain
gthread), and workers beyond ``SLOTS``.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Iterable

from gunicorn.workers.gthread import ThreadWorker

from portal.server.shared_table import SharedTable

SLOTS = 64  # workers on one host, with room for the ones a reload starts
STALE_AFTER = 0.5  # seconds without a word from a worker: it no longer counts
BEAT = 0.1  # a worker speaks at least this often, idle or not
PARKED_POLL = 0.005  # how often a worker over its share looks at the board again
ABSENT = -1


class _Board:
    """Each worker's connection count and when it last published it, in memory
    shared by the arbiter and every worker it forks (anonymous and never on disk)."""

    def __init__(self) -> None:
        table = SharedTable.anonymous(SLOTS, (ctypes.c_int64, ctypes.c_double, ctypes.c_int64))
        self.counts, self.beats, self._seated = table.columns  # seated: in its first row
        for slot in range(SLOTS):
            self.counts[slot] = ABSENT

    @property
    def seated(self) -> int:
        """How many slots were ever given (the rows worth reading)."""
        return int(self._seated[0])

    @seated.setter
    def seated(self, value: int) -> None:
        self._seated[0] = value

    def publish(self, slot: int, count: int) -> None:
        self.beats[slot] = time.monotonic()
        self.counts[slot] = count

    def leave(self, slot: int) -> None:
        self.counts[slot] = ABSENT

    def least_other(self, slot: int) -> int | None:
        """The fewest connections any other live worker holds (None: no other)."""
        fresh = time.monotonic() - STALE_AFTER
        seated = self.seated
        live = [
            count
            for other, (count, beat) in enumerate(
                zip(self.counts[:seated], self.beats[:seated], strict=True)
            )
            if other != slot and count >= 0 and beat >= fresh
        ]
        return min(live, default=None)


BOARD = _Board()  # made when gunicorn loads this module in the arbiter, before any fork


class BalancedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, but once it holds a connection for each of its threads, accepting
    another only while at or under the least-loaded live worker's count (``slot``
    is given by the arbiter: ``seat``). Below that a thread would sit idle, so it
    always accepts: clients that open a connection per request are served by
    every worker at once, as by plain gthread. The board is read when a
    connection is offered, and every ``PARKED_POLL`` while parked."""

    slot = ABSENT
    _looked = 0.0

    def accept(self, listener: object) -> None:
        if self._within_share():
            super().accept(listener)
        else:  # leave it to the worker below its share, which is woken too
            super().set_accept_enabled(False)

    def set_accept_enabled(self, enabled: bool) -> None:
        if not self.alive and self.slot != ABSENT:
            BOARD.leave(self.slot)  # stopping: it accepts nothing more, compare with it no longer
        if enabled and not self._accepting and not self._may_accept_again():
            return  # parked: it looks again shortly (wait_for_and_dispatch_events)
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if self.slot != ABSENT:
            if not self.alive:
                BOARD.leave(self.slot)
            else:
                BOARD.publish(self.slot, self.nr_conns)
                parked = not self._accepting and self.nr_conns < self.cfg.worker_connections
                timeout = min(timeout, PARKED_POLL if parked else BEAT)
        super().wait_for_and_dispatch_events(timeout)

    def _may_accept_again(self) -> bool:
        if self.nr_conns < self.cfg.threads:
            return True
        return time.monotonic() - self._looked >= PARKED_POLL and self._within_share()

    def _within_share(self) -> bool:
        if self.slot == ABSENT or self.nr_conns < self.cfg.threads:
            return True  # a thread would sit idle: the connection is welcome here
        self._looked = time.monotonic()
        least = BOARD.least_other(self.slot)
        return least is None or self.nr_conns <= least


def seat(worker: object, live: Iterable[object]) -> None:
    """In the arbiter, before ``worker`` is forked: give it a slot no live worker
    holds (gunicorn's ``pre_fork`` hook)."""
    taken = {getattr(w, "slot", ABSENT) for w in live}
    free = next((s for s in range(SLOTS) if s not in taken), ABSENT)
    if getattr(getattr(worker, "cfg", None), "reuse_port", False):
        free = ABSENT  # a socket each: the kernel chooses, so holding back would strand
    if free != ABSENT:
        BOARD.leave(free)  # it counts once it has published
        BOARD.seated = max(BOARD.seated, free + 1)
    worker.slot = free  # type: ignore[attr-defined]


def unseat(worker: object) -> None:
    """In the arbiter, once ``worker`` has exited (``child_exit``)."""
    slot = getattr(worker, "slot", ABSENT)
    if slot != ABSENT:
        BOARD.leave(slot)
