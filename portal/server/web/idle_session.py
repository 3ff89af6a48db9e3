"""Session entries that end after a stretch without use (open cases, relay logins).

Starting one, and its ending by idleness, moves the session to a new token
(see sessions.regenerate): a cookie copied before either no longer works.
"""

from __future__ import annotations

import time
from typing import Any

from flask import session

from portal.server.web.sessions import end_line, new_line, regenerate


def begin(key: str, **values: Any) -> None:
    if key not in session:
        new_line()  # a privilege begins: a lineage that Leave or log out can end
    session[key] = {**values, "seen": int(time.time())}
    regenerate()


def fresh(key: str, idle_seconds: int) -> dict[str, Any] | None:
    """The entry if it was used within ``idle_seconds`` (and mark it used now);
    otherwise drop it and return None."""
    data = session.get(key)
    if not isinstance(data, dict):
        return None
    if not _within(data, idle_seconds):
        end(key)
        return None
    session[key] = {**data, "seen": int(time.time())}
    return data


def standing(key: str, idle_seconds: int) -> bool:
    """Whether the entry is there and was used within ``idle_seconds``, without
    counting this request as use (a refused request is nobody at work)."""
    data = session.get(key)
    return isinstance(data, dict) and _within(data, idle_seconds)


def _within(data: dict[str, Any], idle_seconds: int) -> bool:
    return time.time() - float(data.get("seen", 0)) <= idle_seconds


def end(key: str) -> None:
    """Drop the entry; the session continues under a new token, in a new lineage
    (any other token the old one was moved to meanwhile is dead)."""
    if session.pop(key, None) is not None:
        end_line()
        regenerate()
