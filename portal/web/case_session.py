"""The open case in the reporter's session: which mailbox, and for how long.

The session is server-side (see sessions.py): its cookie holds only a random
token. The open case is the mailbox id and the time of the last action; after
``case_idle_seconds`` without one, the case is closed. Opening, confirming a
new code, leaving and idling out each move the session to a new token.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import idle_session
from .services import services

KEY = "case"


@dataclass(frozen=True)
class OpenCase:
    mailbox_id: str
    kind: str
    generation: str | None


def start(mailbox_id: str, kind: str, generation: str | None) -> None:
    idle_session.begin(KEY, id=mailbox_id, kind=kind, gen=generation)


def current() -> OpenCase | None:
    """The open case, or None if there is none or it went idle (then it is closed)."""
    data = idle_session.fresh(KEY, services().config.case_idle_seconds)
    if data is None:
        return None
    gen = data.get("gen")
    return OpenCase(
        mailbox_id=str(data["id"]),
        kind=str(data["kind"]),
        generation=gen if isinstance(gen, str) else None,
    )


def confirmed(case: OpenCase, rotation: str) -> None:
    """The reporter confirmed the new code: the case stays open, on a new token
    (a cookie copied before this no longer works), now of the new code's generation."""
    idle_session.begin(KEY, id=case.mailbox_id, kind=case.kind, gen=rotation)


def leave() -> None:
    idle_session.end(KEY)
