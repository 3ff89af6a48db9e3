"""Purges that ride on requests: dead sessions, spent tokens past their life.

A worker runs each at most once a ``PERIOD``, in whichever request comes when it
is due, after that request's own write has committed. A purge that fails is
logged by its name and the kind of failure, and tried again the next time it is
due: it never turns a request whose report or message was stored into an error
(a reporter told "error" might send it again), and never stops the hooks that
come after it. ``portal purge`` does the same work from cron, and more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

PERIOD = 60.0  # seconds between two runs of one purge in a worker

log = logging.getLogger(__name__)


class Purge:
    """One purge, run at most once a ``PERIOD`` in this worker (``maybe``)."""

    def __init__(self, name: str, run: Callable[[], object]) -> None:
        self.name = name
        self._run = run
        self._last = 0.0
        self._lock = threading.Lock()

    def maybe(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last <= PERIOD:
                return
            self._last = now
        try:
            self._run()
        except Exception as exc:  # housekeeping: the request it rides on stands
            log.warning(
                "The routine purge of %s failed (%s); it runs again within %d s.",
                self.name,
                type(exc).__name__,
                PERIOD,
            )
