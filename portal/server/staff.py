"""Relay staff accounts: diceware passphrases, Argon2id hashes, TOTP, throttling.

Relay staff only carry ciphertext, but a stolen relay login must still be hard
to get and useless for destroying evidence (only a desk-signed ack deletes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import importlib.resources
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY
from nacl.secret import SecretBox
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.common.db import Database
from portal.common.errors import NamedError
from portal.server.models import StaffAccount

PASSPHRASE_WORDS = 7  # 7 × log2(7776) ≈ 90 bits
TOTP_STEP = 30
FREE_FAILURES = 5
MAX_LOCK_SECONDS = 3600
LOGIN_WAIT_SECONDS = 10
ISSUER = "Reporting portal relay"
_NAME = re.compile(r"\A[a-z0-9][a-z0-9._-]{1,62}\Z")

HASHER = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


class StaffError(NamedError):
    """An account operation that cannot be done; the message says why."""

    REASON = "staff"


class LoginRefused(Exception):
    """A failed login. ``locked`` (said only to whoever gave the right
    passphrase) means the account is paused for now."""

    def __init__(self, locked: bool = False) -> None:
        super().__init__("locked" if locked else "refused")
        self.locked = locked


@dataclass(frozen=True)
class NewAccount:
    """Shown once, to the operator who made it: never stored in the clear."""

    name: str
    passphrase: str
    totp_secret: str

    @property
    def otpauth_uri(self) -> str:
        return pyotp.TOTP(self.totp_secret).provisioning_uri(name=self.name, issuer_name=ISSUER)


@lru_cache(maxsize=1)
def _wordlist() -> tuple[str, ...]:
    path = importlib.resources.files("diceware") / "wordlists" / "wordlist_en_eff.txt"
    words = tuple(line.split("\t")[1] for line in path.read_text().splitlines() if "\t" in line)
    assert len(words) == 7776, "the EFF long wordlist has 7776 words"
    return words


def diceware_passphrase(words: int = PASSPHRASE_WORDS) -> str:
    return " ".join(secrets.choice(_wordlist()) for _ in range(words))


def _totp_box(totp_key: bytes) -> SecretBox:
    return SecretBox(hashlib.blake2b(totp_key, person=b"portal-totp", digest_size=32).digest())


@cache
def _dummy_hash() -> str:
    """A hash of a secret nobody holds, checked for a name with no account, so that
    the answer takes as long as for a name that has one. Made once per process,
    when its first accounts are (before any request), not again for each app."""
    return HASHER.hash(secrets.token_hex(16))


class StaffAccounts:
    """Accounts in the portal database; TOTP secrets sealed with a key of their own
    (the data dir's ``totp.key``, which no other use shares)."""

    def __init__(
        self, db: Database, totp_key: bytes, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self._box = _totp_box(totp_key)
        self.clock = clock
        self._dummy_hash = _dummy_hash()
        # Each verification takes 64 MiB: at most a few at once per worker, so a
        # burst of log-in attempts cannot run the relay out of memory.
        self._verifying = threading.BoundedSemaphore(2)

    def add(self, name: str) -> NewAccount:
        if not _NAME.match(name):
            raise StaffError(
                "names are 2-63 lowercase letters, digits, dots, dashes or underscores"
            )
        account = NewAccount(
            name=name, passphrase=diceware_passphrase(), totp_secret=pyotp.random_base32()
        )
        try:
            with self.db.transaction() as s:
                s.add(
                    StaffAccount(
                        name=name,
                        password_hash=HASHER.hash(account.passphrase),
                        totp_sealed=bytes(self._box.encrypt(account.totp_secret.encode())),
                        created_on=dt.datetime.now(dt.UTC).date(),
                    )
                )
        except IntegrityError as exc:
            raise StaffError(f"there is already an account named {name!r}") from exc
        return account

    def remove(self, name: str) -> None:
        with self.db.transaction() as s:
            row = s.scalars(select(StaffAccount).where(StaffAccount.name == name)).one_or_none()
            if row is None:
                raise StaffError(f"no account named {name!r}")
            s.delete(row)

    def names(self) -> list[tuple[str, dt.date]]:
        with self.db.reading() as s:
            return [
                (a.name, a.created_on)
                for a in s.scalars(select(StaffAccount).order_by(StaffAccount.name))
            ]

    def login(self, name: str, passphrase: str, totp_code: str) -> int:
        """Check passphrase and TOTP; return the account id or raise LoginRefused.

        Every attempt costs one Argon2 verification, whether the name exists or
        not, and a wrong passphrase gets the same answer for every name: nobody
        can learn which names exist. A wrong passphrase never pauses an account
        (a 90-bit diceware passphrase is not guessed online, and this way nobody
        can lock staff out by trying). Once the passphrase is right, wrong TOTP
        codes count, and beyond the first few the account pauses, doubling
        each time: that is where an online guess could succeed. A TOTP code is
        accepted once: its time step must be newer than the last one used.
        """
        now = self.clock()
        if not self._verifying.acquire(timeout=LOGIN_WAIT_SECONDS):
            raise LoginRefused()
        try:
            return self._login(name, passphrase, totp_code, now)
        finally:
            self._verifying.release()

    def _login(self, name: str, passphrase: str, totp_code: str, now: float) -> int:
        with self.db.transaction() as s:
            account = s.scalars(select(StaffAccount).where(StaffAccount.name == name)).one_or_none()
            ok = _verify(account.password_hash if account else self._dummy_hash, passphrase)
            if account is None or not ok:
                refused = LoginRefused()
            elif account.locked_until > now:
                refused = LoginRefused(locked=True)
            elif (counter := self._totp_counter(account, totp_code, now)) is None:
                account.failed_logins += 1
                extra = account.failed_logins - FREE_FAILURES
                if extra >= 0:
                    account.locked_until = int(now) + min(MAX_LOCK_SECONDS, 30 * 2**extra)
                refused = LoginRefused(locked=extra >= 0)
            else:
                account.failed_logins = 0
                account.last_totp_counter = counter
                if HASHER.check_needs_rehash(account.password_hash):
                    account.password_hash = HASHER.hash(passphrase)
                return account.id
        raise refused

    def _totp_counter(self, account: StaffAccount, code: str, now: float) -> int | None:
        secret = self._box.decrypt(account.totp_sealed).decode()
        totp = pyotp.TOTP(secret, interval=TOTP_STEP)
        code = code.replace(" ", "")
        current = int(now // TOTP_STEP)
        for counter in (current - 1, current, current + 1):
            if counter > account.last_totp_counter and hmac.compare_digest(
                totp.at(counter * TOTP_STEP), code
            ):
                return counter
        return None

    def exists(self, account_id: int) -> bool:
        with self.db.reading() as s:
            return s.get(StaffAccount, account_id) is not None


def _verify(password_hash: str, passphrase: str) -> bool:
    try:
        return bool(HASHER.verify(password_hash, passphrase))
    except (VerificationError, InvalidHashError):
        return False
