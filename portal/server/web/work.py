"""Proofs of work for the browser's submissions: issued signed, spent once.

Every browser-sealed report, follow-up and upload start must carry the
solution of a challenge this portal issued (see portal/pow.py). A challenge is
``nonce(16) ‖ hour(4) ‖ bits(1) ‖ tag(16)``, the tag an HMAC under the data
dir's ``pow.key``, so nothing about it is stored until it is used; then its
digest goes into the spent table in the same statement that checks it was not
spent before, so a solution works once, even raced from many requests at once
or on several hosts. A challenge lives two hours.

The difficulty rises with the load this worker sees, one bit per doubling
beyond ``pow_rate`` solutions a minute, up to ``pow_max_bits``: cheap for one
reporter, dear for a flood. A challenge is never accepted below ``pow_bits``,
whatever it says. It looks at nobody.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from portal.common.db import Tx, on_commit
from portal.protocol.encoding import EncodingError, b64decode, b64encode
from portal.protocol.pow import Challenge, is_solution
from portal.server.spent import spend_within as spend_digest
from portal.server.web.housekeeping import Purge
from portal.server.web.services import services

NONCE_BYTES = 16
TAG_BYTES = 16
TOKEN_BYTES = NONCE_BYTES + 4 + 1 + TAG_BYTES
LIFETIME_HOURS = 2
WINDOW = 60.0


class WorkMissing(Exception):
    """No valid, unspent solution of a challenge this portal issued."""


class Load:
    """Solutions accepted by this worker in the last minute (in memory only)."""

    def __init__(self) -> None:
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self._times.append(time.monotonic())

    def per_minute(self) -> int:
        with self._lock:
            cutoff = time.monotonic() - WINDOW
            while self._times and self._times[0] < cutoff:
                self._times.popleft()
            return len(self._times)


def current_hour() -> int:
    return int(time.time() // 3600)


def difficulty(load: Load) -> int:
    config = services().config
    over = load.per_minute() / max(1, config.pow_rate)
    extra = math.ceil(math.log2(over)) if over > 1 else 0
    return min(config.pow_bits + extra, config.pow_max_bits)


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:TAG_BYTES]


def issue() -> dict[str, Any]:
    """A new challenge, as the browser receives it."""
    svc = services()
    body = secrets.token_bytes(NONCE_BYTES) + struct.pack(
        ">IB", current_hour(), difficulty(svc.pow_load)
    )
    token = body + _tag(svc.pow_key, body)
    return {
        "challenge": b64encode(token),
        "bits": body[-1],
        "iterations": svc.config.pow_iterations,
    }


@dataclass(frozen=True)
class Paid:
    """A checked solution of an issued challenge, to be spent once."""

    digest: bytes
    hour: int


def check(proof: object) -> Paid:
    """Check a solution (WorkMissing unless it solves a live challenge this portal
    issued, at today's difficulty); spend it with :func:`spend_within`."""
    svc = services()
    if not isinstance(proof, dict):
        raise WorkMissing
    try:
        token = b64decode(proof.get("challenge"), length=TOKEN_BYTES)
    except EncodingError as exc:
        raise WorkMissing from exc
    body, tag = token[:-TAG_BYTES], token[-TAG_BYTES:]
    hour, bits = struct.unpack(">IB", body[NONCE_BYTES:])
    if not hmac.compare_digest(tag, _tag(svc.pow_key, body)):
        raise WorkMissing
    # Never below the floor, and never more than a bit below what is asked now: a
    # stock of cheap challenges fetched before a flood is refused once it rises.
    floor = max(svc.config.pow_bits, difficulty(svc.pow_load) - 1)
    if not 0 <= current_hour() - hour < LIFETIME_HOURS or bits < floor:
        raise WorkMissing
    if not is_solution(Challenge(token, bits, svc.config.pow_iterations), proof.get("nonce")):
        raise WorkMissing
    return Paid(hashlib.sha256(token).digest(), hour)


def spend_within(t: Tx, paid: Paid) -> None:
    """Mark the challenge spent inside the caller's transaction (WorkMissing if it
    was spent before: a replay, and the transaction stores nothing); the work
    counts toward the load once that transaction commits."""
    if not spend_digest(t, paid.digest, paid.hour):
        raise WorkMissing
    on_commit(t, _counted)


def spend(proof: object) -> None:
    """Check a solution, then mark its challenge spent; WorkMissing unless both hold."""
    paid = check(proof)
    services().db.joined(lambda c: spend_within(c, paid))


def _counted() -> None:
    services().pow_load.add()
    _PURGE_SPENT.maybe()


_PURGE_SPENT = Purge(
    "spent proofs of work", lambda: services().spent.purge(current_hour() - LIFETIME_HOURS)
)
