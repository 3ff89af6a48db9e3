"""Proofs of work for the browser's submissions: issued into the session, spent once.

Every browser-sealed report, follow-up and upload start must carry the
solution of a challenge this session was given (see portal/pow.py). A
challenge lives in the (server-side) session until it is used, so a solution
works once, nowhere else, and nothing about it is written outside the sealed
session. The difficulty rises with the load this worker sees, one bit per
doubling beyond ``pow_rate`` solutions a minute, up to ``pow_max_bits``:
cheap for one reporter, dear for a flood. It looks at nobody.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import deque
from typing import Any

from flask import session

from ..encoding import EncodingError, b64decode, b64encode
from ..pow import CHALLENGE_BYTES, Challenge, is_solution, same_challenge
from .services import services

KEY = "pow"
OUTSTANDING = 8  # challenges one session may hold at once (files upload in parallel)
WINDOW = 60.0


class WorkMissing(Exception):
    """No valid solution of a challenge this session holds."""


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


def difficulty(load: Load) -> int:
    config = services().config
    over = load.per_minute() / max(1, config.pow_rate)
    extra = math.ceil(math.log2(over)) if over > 1 else 0
    return min(config.pow_bits + extra, config.pow_max_bits)


def issue() -> dict[str, Any]:
    """A new challenge for this session, as the browser receives it."""
    config = services().config
    challenge = Challenge(
        secrets.token_bytes(CHALLENGE_BYTES), difficulty(services().pow_load), config.pow_iterations
    )
    held = [c for c in session.get(KEY, []) if isinstance(c, dict)][-(OUTSTANDING - 1) :]
    session[KEY] = [
        *held,
        {"c": b64encode(challenge.value), "b": challenge.bits, "i": challenge.iterations},
    ]
    return {
        "challenge": b64encode(challenge.value),
        "bits": challenge.bits,
        "iterations": challenge.iterations,
    }


def spend(proof: object) -> None:
    """Take the challenge ``proof`` names out of the session (used or not: once),
    then check its solution; raise WorkMissing unless it holds."""
    if not isinstance(proof, dict):
        raise WorkMissing
    try:
        value = b64decode(proof.get("challenge"), length=CHALLENGE_BYTES)
    except EncodingError as exc:
        raise WorkMissing from exc
    held = [c for c in session.get(KEY, []) if isinstance(c, dict)]
    match = next((c for c in held if same_challenge(b64decode(c["c"]), value)), None)
    if match is None:
        raise WorkMissing
    session[KEY] = [c for c in held if c is not match]
    if not is_solution(Challenge(value, int(match["b"]), int(match["i"])), proof.get("nonce")):
        raise WorkMissing
    services().pow_load.add()
