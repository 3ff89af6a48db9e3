"""Which uploads belong to this browser session: a random token, never an address."""

from __future__ import annotations

import secrets

from flask import session

KEY = "uploader"


def owner() -> str:
    token = session.get(KEY)
    if not isinstance(token, str):
        token = secrets.token_hex(16)
        session[KEY] = token
    return token
