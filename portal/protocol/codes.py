"""One-time case codes: generation, Damm check digit, normalisation, derivation.

A code is 24 decimal digits (23 random, one Damm check digit), shown as six
groups of four. It is derived with PBKDF2-HMAC-SHA256 into a 32-byte seed, and
the seed with HMAC-SHA256 into a ``lookup`` (whose SHA-256 indexes the mailbox)
and a ``wrap`` key (which wraps the reporter's secret key). The browser does the
same derivation with its native WebCrypto at every Tor Browser level, and the
server, without JavaScript, with OpenSSL through ``cryptography``: byte-identical
everywhere. (``cryptography`` ships a newer OpenSSL than the interpreter's
``hashlib`` may link, and its PBKDF2 runs in about half the time here: the
derivation is most of what a report without JavaScript costs the server.)

Why PBKDF2 and not a memory-hard function: the browser can only run a
memory-hard function (Argon2id) in interpreted JavaScript at Safer, where one
derivation took over 15 seconds; PBKDF2 is native everywhere. Its cost is set so
that trying every code stays out of reach (docs/threat-model.md, "Codes").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from portal.common.errors import NamedError

CODE_DIGITS = 24
GROUP = 4
SEED_BYTES = 32
KDF_ALG = "pbkdf2-sha256"
# 2^15 iterations are 2^16 SHA-256 compressions per guess: with 76 bits of code,
# 2^92 compressions to try every code (docs/threat-model.md). Nothing below it is accepted.
MIN_ITERATIONS = 2**15
DEFAULT_ITERATIONS = 50_000

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
    """The code derivation's cost (PBKDF2 iterations), published in organization.json."""

    iterations: int = DEFAULT_ITERATIONS


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
    """PBKDF2-HMAC-SHA256(code, salt) -> seed; HMAC-SHA256(seed, label) -> lookup, wrap.

    One 32-byte PBKDF2 block: an attacker testing a guess against a stored index
    pays for exactly this block, no more and no less than the reporter."""
    seed = pbkdf2_sha256(digits.encode("ascii"), salt, params.iterations, SEED_BYTES)
    return CodeKeys(
        lookup=hmac.new(seed, b"portal-code-lookup", hashlib.sha256).digest(),
        wrap=hmac.new(seed, b"portal-code-wrap", hashlib.sha256).digest(),
    )


def pbkdf2_sha256(secret: bytes, salt: bytes, iterations: int, length: int) -> bytes:
    """PBKDF2-HMAC-SHA256 (RFC 8018), for codes and for proofs of work."""
    return PBKDF2HMAC(algorithm=SHA256(), length=length, salt=salt, iterations=iterations).derive(
        secret
    )


def mailbox_index(lookup: bytes) -> bytes:
    """SHA-256 of the lookup: the mailbox's database index."""
    return hashlib.sha256(lookup).digest()
