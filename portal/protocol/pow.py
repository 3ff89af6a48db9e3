"""Proof of work for the browser's submissions (its twin: static/src/crypto/pow.js).

A challenge is a byte string the portal issued (portal/web/work.py) with a
difficulty (``bits``) and a cost per guess (``iterations``). A solution is a
number ``nonce`` such that PBKDF2-HMAC-SHA256(challenge, "portal-pow-v1" ‖
nonce as 8 bytes big-endian, iterations) starts with ``bits`` zero bits:
about 2^bits guesses to find, one to check.

Each guess is one call to the browser's native PBKDF2 (WebCrypto), so a
reporter works at native speed at every Tor Browser level, where a hash
computed in interpreted JavaScript would leave them a hundred times behind
an attacker's native code. Nothing here identifies anyone.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass

from portal.protocol.codes import pbkdf2_sha256

SALT_PREFIX = b"portal-pow-v1"
MAX_NONCE = 2**53  # what a JavaScript number holds exactly


@dataclass(frozen=True)
class Challenge:
    value: bytes
    bits: int
    iterations: int


def guess(challenge: Challenge, nonce: int) -> bytes:
    salt = SALT_PREFIX + nonce.to_bytes(8, "big")
    return pbkdf2_sha256(challenge.value, salt, challenge.iterations, 32)


def leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def is_solution(challenge: Challenge, nonce: object) -> bool:
    """Whether ``nonce`` solves ``challenge`` (one PBKDF2 to check)."""
    if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 <= nonce < MAX_NONCE:
        return False
    return leading_zero_bits(guess(challenge, nonce)) >= challenge.bits


def solve(challenge: Challenge) -> int:
    """The smallest solution (for tests, benchmarks and simulated reporters)."""
    nonce = 0
    while not is_solution(challenge, nonce):
        nonce += 1
    return nonce


def same_challenge(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def proof_for(offer: dict[str, object]) -> dict[str, object]:
    """The ``pow`` field of a submission for a challenge as the portal offers it
    (what the browser sends; for simulated reporters and tests)."""
    value = base64.urlsafe_b64decode(str(offer["challenge"]) + "==")
    nonce = solve(Challenge(value, int(str(offer["bits"])), int(str(offer["iterations"]))))
    return {"challenge": offer["challenge"], "nonce": nonce}
