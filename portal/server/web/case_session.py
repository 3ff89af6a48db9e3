"""The open case in the reporter's session: which mailbox, and for how long.

The session is server-side (see sessions.py): its cookie holds only a random
token. The open case is the mailbox id and the time of the last action; after
``case_idle_seconds`` without one, the case is closed. Opening, confirming a
new code, leaving and idling out each move the session to a new token.

Without JavaScript the server also keeps, sealed in the session while the case
is open: the reporter's secret key (to seal their follow-ups and read their
case), the new code until it is confirmed (so every page can show it again),
and the last four digits of the code that works now (so every page can say
which one it is, even after the case closes).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flask import session
from nacl.public import PrivateKey

from portal.protocol.encoding import b64decode, b64encode
from portal.server.web import idle_session, sessions
from portal.server.web.services import services

KEY = "case"
CLOSED = "case-closed"  # what the code form says once a no-JS case has closed


@dataclass(frozen=True)
class OpenCase:
    mailbox_id: str
    kind: str
    generation: str | None  # the confirmed rotation the opening code came from
    pending: str | None = None  # the rotation begun in this session, not yet confirmed
    # Only without JavaScript:
    reporter: PrivateKey | None = None  # seals this reporter's follow-ups
    new_code: str | None = None  # the pending code's digits, until confirmed
    working: str | None = None  # the last group of the code that opens the case now
    confirmed_here: bool = False  # this session confirmed the code that works now


def _save(case: OpenCase, *, fresh_token: bool) -> None:
    values: dict[str, Any] = {
        "id": case.mailbox_id,
        "kind": case.kind,
        "gen": case.generation,
        "pending": case.pending,
        "new": case.new_code,
        "works": case.working,
        "confirmed": case.confirmed_here,
    }
    if case.reporter is not None:
        values["sk"] = b64encode(bytes(case.reporter))
    session.pop(CLOSED, None)
    if fresh_token:
        idle_session.begin(KEY, **values)
    else:
        session[KEY] = {**session[KEY], **values}


def start(case: OpenCase) -> None:
    """A case was opened with a code: it is this session's, on a new token."""
    _save(case, fresh_token=True)


def current() -> OpenCase | None:
    """The open case, or None if there is none or it went idle (then it is closed)."""
    before = session.get(KEY)
    data = idle_session.fresh(KEY, services().config.case_idle_seconds)
    if data is None:
        _closed(before)  # idled out: as if the reporter had left
        return None
    if not sessions.alive():  # ended (Leave, another tab) while this request came in
        return None
    return _case(data)


def peek() -> OpenCase | None:
    """The open case, without counting this request as activity (it neither keeps
    the case open nor closes it)."""
    if not idle_session.standing(KEY, services().config.case_idle_seconds):
        return None
    return _case(session[KEY]) if sessions.alive() else None


def _case(data: dict[str, Any]) -> OpenCase:
    def text(name: str) -> str | None:
        value = data.get(name)
        return value if isinstance(value, str) else None

    sk = text("sk")
    return OpenCase(
        mailbox_id=str(data["id"]),
        kind=str(data["kind"]),
        generation=text("gen"),
        pending=text("pending"),
        reporter=PrivateKey(b64decode(sk, length=32)) if sk else None,
        new_code=text("new"),
        working=text("works"),
        confirmed_here=data.get("confirmed") is True,
    )


def rotation_begun(case: OpenCase, rotation: str) -> None:
    _save(replace(case, pending=rotation), fresh_token=False)


def confirmed(case: OpenCase, rotation: str, working: str | None = None) -> None:
    """The reporter confirmed the new code: the case stays open, on a new token
    (a cookie copied before this no longer works), now of the new code's generation."""
    _save(
        replace(
            case,
            generation=rotation,
            pending=None,
            new_code=None,
            working=working,
            confirmed_here=True,
        ),
        fresh_token=True,
    )


def drop_new_code(case: OpenCase) -> None:
    """Another opening replaced this session's new code: it can no longer be
    confirmed, so the page stops showing it (the code that opened the case works)."""
    _save(replace(case, pending=None, new_code=None), fresh_token=False)


def end_here() -> None:
    """A newer code was confirmed elsewhere: the code that opened this case is dead,
    and the case closes here without a hint that it still works."""
    session.pop(CLOSED, None)
    idle_session.end(KEY)


def leave() -> None:
    """Close the case; a new code begun here and never confirmed is discarded."""
    _closed(session.get(KEY))
    idle_session.end(KEY)


def closed_hint() -> str | None:
    """After a no-JS case closed: the last group of the code that still works."""
    hint = session.get(CLOSED)
    return hint if isinstance(hint, str) else None


def _closed(data: object) -> None:
    """The case closes: drop an unconfirmed code (the old one keeps working) and
    remember which code works now, for the page to say."""
    if not isinstance(data, dict):
        return
    if isinstance(data.get("pending"), str):
        services().mailboxes.discard_pending(str(data["id"]), data["pending"])
    if isinstance(data.get("works"), str):
        session[CLOSED] = data["works"]
