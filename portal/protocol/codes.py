"""One-time case codes: generation, Damm check digit, normalisation, derivation.

A code is 24 decimal digits (23 random, one Damm check digit), shown as six
groups of four. It is derived with Argon2id into a 32-byte ``lookup`` (whose
SHA-256 indexes the mailbox) and a 32-byte ``wrap`` key (which wraps the
reporter's secret key). The browser does the same derivation with libsodium.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw

from portal.common.errors import NamedError

CODE_DIGITS = 24
GROUP = 4
SEED_BYTES = 64

# The Damm quasigroup of order 10 (a weakly totally anti-symmetric table):
# it catches every single-digit error and every adjacent transposition.
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

_SEPARATORS = frozenset(" \t\u00a0\u202f\u2009-\u2010\u2011\u2012\u2013\u2014\u2212._·")


class CodeError(NamedError, ValueError):
    """A code that cannot be right: wrong length, stray characters or a typo."""

    REASON = "code"


@dataclass(frozen=True)
class KdfParams:
    """Argon2id13 cost of the code derivation, published in organization.json."""

    ops: int
    mem: int  # bytes, as libsodium's crypto_pwhash takes it


@dataclass(frozen=True)
class CodeKeys:
    """What a code derives to: the mailbox lookup and the key-wrapping key."""

    lookup: bytes
    wrap: bytes

    @property
    def index(self) -> bytes:
        """The only form of the code the server ever stores."""
        return mailbox_index(self.lookup)


def damm_digit(digits: str) -> int:
    """The Damm check digit of an ASCII digit string."""
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][ord(ch) - 48]
    return interim


def generate() -> str:
    """A fresh 24-digit code: 23 uniform CSPRNG digits and a check digit."""
    body = "".join(str(secrets.randbelow(10)) for _ in range(CODE_DIGITS - 1))
    return body + str(damm_digit(body))


def normalise(text: str) -> str:
    """Map any Unicode decimal digits to ASCII, drop spaces, dashes and dots.

    Raises CodeError for anything else, a wrong length, or a failed check digit.
    """
    digits = ascii_digits(text)
    if len(digits) != CODE_DIGITS:
        raise CodeError("wrong length")
    if damm_digit(digits) != 0:
        raise CodeError("check digit")
    return digits


def ascii_digits(text: str) -> str:
    """Unicode decimal digits to ASCII, separators dropped; CodeError for anything else."""
    out = []
    for ch in text.strip():
        if ch in _SEPARATORS or unicodedata.category(ch) == "Zs":
            continue
        value = unicodedata.decimal(ch, None)
        if value is None:
            raise CodeError("unexpected character")
        out.append(str(value))
    return "".join(out)


def format_code(digits: str) -> str:
    """Six groups of four, separated by spaces."""
    return " ".join(digits[i : i + GROUP] for i in range(0, len(digits), GROUP))


def last_group(digits: str) -> str:
    """The group the reporter types back to confirm they wrote the code down."""
    return digits[-GROUP:]


def derive(digits: str, salt: bytes, params: KdfParams) -> CodeKeys:
    """Argon2id13(code, salt) -> lookup ‖ wrap, byte-identical to crypto_pwhash."""
    seed = hash_secret_raw(
        secret=digits.encode("ascii"),
        salt=salt,
        time_cost=params.ops,
        memory_cost=params.mem // 1024,
        parallelism=1,
        hash_len=SEED_BYTES,
        type=Type.ID,
        version=19,
    )
    return CodeKeys(lookup=seed[:32], wrap=seed[32:])


def mailbox_index(lookup: bytes) -> bytes:
    """SHA-256 of the lookup: the mailbox's database index."""
    return hashlib.sha256(lookup).digest()
