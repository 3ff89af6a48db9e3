"""Which uploads belong to this browser session: a random token, never an address."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import session

KEY = "uploader"


def owner() -> str:
    token = session.get(KEY)
    if not isinstance(token, str):
        token = secrets.token_hex(16)
        session[KEY] = token
    return token


def existing() -> str:
    """This session's uploader, never made here: a question about an upload (where
    to resume) must not start a session, or the page's renewal after it would be
    told the session is not new and keep naming the ended one's uploads. If there
    is none, an uploader that owns nothing."""
    token = session.get(KEY)
    return token if isinstance(token, str) else secrets.token_hex(16)


def mark(uploader: str) -> str:
    """A name for this uploader the page may hold, to tell whether a renewed
    token is still of the session its uploads live in (a one-way digest: the
    page never sees the uploader itself)."""
    return hashlib.blake2b(uploader.encode(), digest_size=12, person=b"portal-uploader").hexdigest()


def other_than(given: str | None) -> bool:
    """Whether this session's uploads are not those marked ``given`` (the mark a
    page's uploads were started under); false if none is given. Never makes an
    uploader."""
    if not given:
        return False
    token = session.get(KEY)
    return not (
        isinstance(token, str) and hmac.compare_digest(mark(token).encode(), given.encode())
    )
