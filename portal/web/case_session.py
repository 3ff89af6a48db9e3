"""The open case in the reporter's session: which mailbox, and for how long.

The session is server-side (see sessions.py): its cookie holds only a random
token. The open case is the mailbox id and the time of the last action; after
``case_idle_seconds`` without one, the case is closed. Opening, confirming a
new code, leaving and idling out each move the session to a new token.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flask import session
from nacl.public import PrivateKey

from ..encoding import b64decode, b64encode
from . import idle_session, sessions
from .services import services

KEY = "case"


@dataclass(frozen=True)
class OpenCase:
    mailbox_id: str
    kind: str
    generation: str | None  # the confirmed rotation the opening code came from
    pending: str | None = None  # the rotation begun in this session, not yet confirmed
    # Only without JavaScript: the server seals this reporter's follow-ups with it.
    reporter: PrivateKey | None = None


def _save(case: OpenCase, *, fresh_token: bool) -> None:
    values: dict[str, Any] = {
        "id": case.mailbox_id,
        "kind": case.kind,
        "gen": case.generation,
        "pending": case.pending,
    }
    if case.reporter is not None:
        values["sk"] = b64encode(bytes(case.reporter))
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
        _discard_pending(before)  # idled out: as if the reporter had left
        return None
    if not sessions.alive():  # ended (Leave, another tab) while this request came in
        return None
    return _case(data)


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
    )


def rotation_begun(case: OpenCase, rotation: str) -> None:
    _save(replace(case, pending=rotation), fresh_token=False)


def confirmed(case: OpenCase, rotation: str) -> None:
    """The reporter confirmed the new code: the case stays open, on a new token
    (a cookie copied before this no longer works), now of the new code's generation."""
    _save(replace(case, generation=rotation, pending=None), fresh_token=True)


def leave() -> None:
    """Close the case; a new code begun here and never confirmed is discarded."""
    data = session.get(KEY)
    if isinstance(data, dict):
        _discard_pending(data)
    idle_session.end(KEY)


def _discard_pending(data: object) -> None:
    if isinstance(data, dict) and isinstance(data.get("pending"), str):
        services().mailboxes.discard_pending(str(data["id"]), data["pending"])
