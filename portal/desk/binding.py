"""Which case an envelope belongs to: proved by its cryptography, never taken on
the portal's word (the inbox's manifest is not signed by anyone).

A report opens with the organization's key alone and names its case by the
reporter's public key inside it (envelopes.case_id). A message or an answer
opens only with the organization's key *and* its case's public key, so only
the case's reporter (or witness) can have made it. See docs/protocol.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portal.desk.evidence import CaseFile, files_of
from portal.desk.keystore import DeskKeys
from portal.protocol.encoding import EncodingError, b64decode
from portal.protocol.envelopes import FOLLOW_UP, EnvelopeError, case_id, open_envelope


class Unbound(ValueError):
    """An envelope that does not open, or cannot be bound to the case it claims."""


@dataclass(frozen=True)
class CaseKey:
    """What binds items to a case: the public key that names it, and its kind."""

    reporter_pk: bytes
    kind: str  # "report" or "invitation"


@dataclass(frozen=True)
class Opened:
    """An envelope opened and bound to its case (plaintext: keep in memory only)."""

    case_id: str
    kind: str
    content: dict[str, Any]
    reporter_pk: bytes  # for a report, the key that names its new case
    files: tuple[CaseFile, ...]


def open_bound(
    document: bytes, keys: DeskKeys, claimed: str, known: Callable[[str], CaseKey | None]
) -> Opened:
    """Open an envelope the portal filed under case ``claimed``; raise Unbound
    unless it opens and is cryptographically that case's."""
    try:
        kind = json.loads(document)["kind"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise Unbound("it is not an envelope") from exc
    if kind == "report":
        content = _content(document, keys, None, kind)
        try:
            pk = b64decode(content.get("reply_pk"), length=32)
        except EncodingError as exc:
            raise Unbound("the report carries no reporter key") from exc
        if case_id(pk) != claimed:
            raise Unbound("the portal filed this report under another case")
        return Opened(claimed, kind, content, pk, tuple(files_of(content, claimed)))
    case = known(claimed)
    if case is None:
        raise Unbound("it names a case this desk has no report or invitation for")
    if FOLLOW_UP.get(case.kind) != kind:
        raise Unbound(f"a {case.kind} case does not take a {kind!r} item")
    content = _content(document, keys, case.reporter_pk, kind)
    return Opened(claimed, kind, content, case.reporter_pk, tuple(files_of(content, claimed)))


def _content(document: bytes, keys: DeskKeys, sender_pk: bytes | None, kind: str) -> dict[str, Any]:
    try:
        content = json.loads(open_envelope(document, keys.encrypt, sender_pk))
    except EnvelopeError as exc:
        raise Unbound(
            "it does not open: damaged, or not made by this case's reporter"
            if sender_pk is not None
            else "it does not open with this desk's keys"
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise Unbound("it opens, but holds no readable report") from exc
    if not isinstance(content, dict) or content.get("kind") != kind:
        raise Unbound("what it holds is not the kind of item it says it is")
    fields, attachments = content.get("fields"), content.get("attachments", [])
    if not (
        isinstance(fields, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
        and isinstance(attachments, list)
        and all(isinstance(a, dict) for a in attachments)
    ):
        raise Unbound("it opens, but what it holds is not laid out as a report is")
    return content
