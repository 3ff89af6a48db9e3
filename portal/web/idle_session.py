"""Session entries that end after a stretch without use (open cases, relay logins)."""

from __future__ import annotations

import time
from typing import Any

from flask import session


def begin(key: str, **values: Any) -> None:
    session[key] = {**values, "seen": int(time.time())}


def fresh(key: str, idle_seconds: int) -> dict[str, Any] | None:
    """The entry if it was used within ``idle_seconds`` (and mark it used now);
    otherwise drop it and return None."""
    data = session.get(key)
    if not isinstance(data, dict):
        return None
    if time.time() - float(data.get("seen", 0)) > idle_seconds:
        session.pop(key, None)
        return None
    session[key] = {**data, "seen": int(time.time())}
    return data
