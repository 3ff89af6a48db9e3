"""Writing to reporters from the desk: replies, statuses and witness invitations."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from nacl.public import PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.common.errors import NamedError
from portal.common.languages import N_
from portal.desk.casework import WorkRefused, open_own, seal_own
from portal.desk.keystore import DeskKeys
from portal.desk.store import (
    DeskCase,
    DeskStore,
    FormOnce,
    SentReply,
    WitnessInvitation,
    utc_now,
    utc_today,
)
from portal.protocol import codes
from portal.protocol.envelopes import case_id as case_id_of
from portal.protocol.mailbox import new_mailbox_key
from portal.protocol.replies import ReplyItem, parse_item, seal_reply

MAX_TEXT = 20_000  # the messages below say it in words


class ReplyRefused(NamedError, ValueError):
    """A reply that cannot be written: empty, too long, or for a case without a reply key."""

    REASON = "reply_refused"


@dataclass(frozen=True)
class NewInvitation:
    mailbox_id: str
    code: str | None  # None when this form had already made it: its code was shown then


@dataclass(frozen=True)
class Saved:
    """A reply kept for the next outbox, or the one this very form kept before."""

    item: ReplyItem | None
    again: bool = False


def _checked(text: str, empty: str, too_long: str, *, required: bool) -> str:
    text = text.strip()
    if required and not text:
        raise ReplyRefused(empty)
    if len(text) > MAX_TEXT:
        raise ReplyRefused(too_long)
    return text


def reporter_key(store: DeskStore, mailbox_id: str) -> bytes:
    """The public key replies to this case are sealed to: the one that names the
    case, learnt from its own first report (or made here for a witness), never
    from anything the portal says."""
    case = store.case(mailbox_id)
    if case is None or case_id_of(case.reporter_pk) != mailbox_id:
        raise ReplyRefused("this case has no report with a reply key")
    return case.reporter_pk


def read_own_copy(keys: DeskKeys, sealed: bytes) -> ReplyItem:
    try:
        return parse_item(json.loads(open_own(keys, sealed)))
    except WorkRefused as exc:
        raise ReplyRefused("a stored reply cannot be opened with this desk's keys") from exc


def _once(s: Session, nonce: str, made: str) -> None:
    if nonce:
        s.add(FormOnce(nonce=nonce[:64], made=made, at=utc_now()))


def _store_item(
    store: DeskStore, keys: DeskKeys, item: ReplyItem, reporter_pk: bytes, s: Session
) -> str:
    """Add the item to the transaction ``s``; the caller logs it once committed."""
    reply_id = secrets.token_hex(16)
    s.add(
        SentReply(
            id=reply_id,
            mailbox_id=item.mailbox,
            seq=item.seq,
            written_on=utc_today(),
            for_reporter=seal_reply(item, keys.signing, reporter_pk),
            for_desk=seal_own(keys.organization, item.to_bytes()),
            by=keys.person,
            written_at=utc_now(),
        )
    )
    return reply_id


def _log_item(store: DeskStore, keys: DeskKeys, item: ReplyItem, reply_id: str) -> None:
    with store.db.reading() as s:
        row = s.get(SentReply, reply_id)
        assert row is not None
        sealed = row.for_reporter
    store.custody.append(
        "invite" if item.type == "questions" else "reply",
        keys.person,
        case=item.mailbox,
        seq=item.seq,
        status=item.status,
        id=reply_id,
        sha256=hashlib.sha256(sealed).hexdigest(),
    )


def reply(
    store: DeskStore,
    keys: DeskKeys,
    case_id: str,
    status: str | None,
    text: str,
    nonce: str = "",
) -> Saved:
    """Write a signed reply (text, a new status, or both) for the next outbox.

    ``nonce`` is the form's one-time field: the same form sent again (a refresh,
    a double click) keeps nothing new and says so.
    """
    text = _checked(
        text,
        N_("a reply cannot be empty"),
        N_("a reply can be at most 20,000 characters"),
        required=status is None,
    )
    pk = reporter_key(store, case_id)
    with store.changing():
        with store.db.transaction() as s:
            if nonce and s.get(FormOnce, nonce[:64]) is not None:
                return Saved(item=None, again=True)
            seq = (
                s.scalar(select(func.max(SentReply.seq)).where(SentReply.mailbox_id == case_id))
                or 0
            ) + 1
            item = ReplyItem(
                mailbox=case_id, seq=seq, date=utc_today().isoformat(), status=status, text=text
            )
            reply_id = _store_item(store, keys, item, pk, s)
            _once(s, nonce, reply_id)
        _log_item(store, keys, item, reply_id)
    return Saved(item=item)


def invite(
    store: DeskStore,
    keys: DeskKeys,
    questions: str,
    *,
    concerns: str | None = None,
    language: str | None = None,
    nonce: str = "",
) -> NewInvitation:
    """Make a witness mailbox whose first item holds the questions; return its code
    once. ``concerns`` links it to the case it is about; ``language`` is the one
    the witness's sheet is printed in. The same form sent again makes nothing
    new: it names the invitation it made, without a code."""
    questions = _checked(
        questions,
        N_("the questions cannot be empty"),
        N_("the questions can be at most 20,000 characters"),
        required=True,
    )
    witness = PrivateKey.generate()
    code = codes.generate()
    key = new_mailbox_key(code, keys.organization, witness)
    witness_pk = bytes(witness.public_key)
    mailbox_id = case_id_of(witness_pk)
    today = utc_today()
    item = ReplyItem(
        mailbox=mailbox_id,
        seq=1,
        date=today.isoformat(),
        status=None,
        text=questions,
        type="questions",
    )
    with store.changing():
        with store.db.transaction() as s:
            made = s.get(FormOnce, nonce[:64]) if nonce else None
            if made is not None:
                return NewInvitation(mailbox_id=made.made, code=None)
            if concerns is not None and s.get(DeskCase, concerns) is None:
                raise ReplyRefused(f"there is no case {concerns!r} to link the invitation to")
            s.add(
                WitnessInvitation(
                    mailbox_id=mailbox_id,
                    index=key.index,
                    wrapped_key=key.wrapped_key,
                    reporter_pk=witness_pk,
                    created_on=today,
                    concerns=concerns,
                    language=language,
                    by=keys.person,
                    created_at=utc_now(),
                )
            )
            s.add(
                DeskCase(id=mailbox_id, reporter_pk=witness_pk, kind="invitation", opened_on=today)
            )
            reply_id = _store_item(store, keys, item, witness_pk, s)
            _once(s, nonce, mailbox_id)
        _log_item(store, keys, item, reply_id)
    return NewInvitation(mailbox_id=mailbox_id, code=code)
