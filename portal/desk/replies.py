"""Writing to reporters from the desk: replies, statuses and witness invitations."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

import nacl.exceptions
from nacl.public import PrivateKey, PublicKey, SealedBox
from sqlalchemy import func, select

from portal.common.errors import NamedError
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskCase, DeskStore, SentReply, WitnessInvitation, utc_today
from portal.protocol import codes
from portal.protocol.envelopes import case_id as case_id_of
from portal.protocol.mailbox import new_mailbox_key
from portal.protocol.replies import ReplyItem, parse_item, seal_reply

MAX_TEXT = 20_000


class ReplyRefused(NamedError, ValueError):
    """A reply that cannot be written: empty, too long, or for a case without a reply key."""

    REASON = "reply_refused"


@dataclass(frozen=True)
class NewInvitation:
    mailbox_id: str
    code: str


def _checked(text: str, what: str, *, required: bool) -> str:
    text = text.strip()
    if required and not text:
        raise ReplyRefused(f"{what} cannot be empty")
    if len(text) > MAX_TEXT:
        raise ReplyRefused(f"{what} can be at most {MAX_TEXT} characters")
    return text


def reporter_key(store: DeskStore, mailbox_id: str) -> bytes:
    """The public key replies to this case are sealed to: the one that names the
    case, learnt from its own first report (or made here for a witness), never
    from anything the portal says."""
    case = store.case(mailbox_id)
    if case is None or case_id_of(case.reporter_pk) != mailbox_id:
        raise ReplyRefused("this case has no report with a reply key")
    return case.reporter_pk


def _own_copy(keys: DeskKeys, item: ReplyItem) -> bytes:
    return bytes(SealedBox(PublicKey(keys.organization.encrypt[0].pk)).encrypt(item.to_bytes()))


def read_own_copy(keys: DeskKeys, sealed: bytes) -> ReplyItem:
    for sk in keys.encrypt.values():
        try:
            return parse_item(json.loads(SealedBox(sk).decrypt(sealed)))
        except nacl.exceptions.CryptoError:
            continue
    raise ReplyRefused("a stored reply cannot be opened with this desk's keys")


def _store_item(store: DeskStore, keys: DeskKeys, item: ReplyItem, reporter_pk: bytes) -> str:
    reply_id = secrets.token_hex(16)
    sealed = seal_reply(item, keys.signing, reporter_pk)
    with store.db.transaction() as s:
        s.add(
            SentReply(
                id=reply_id,
                mailbox_id=item.mailbox,
                seq=item.seq,
                written_on=utc_today(),
                for_reporter=sealed,
                for_desk=_own_copy(keys, item),
            )
        )
    store.custody.append(
        "invite" if item.type == "questions" else "reply",
        case=item.mailbox,
        seq=item.seq,
        status=item.status,
        id=reply_id,
        sha256=hashlib.sha256(sealed).hexdigest(),
    )
    return reply_id


def reply(
    store: DeskStore, keys: DeskKeys, case_id: str, status: str | None, text: str
) -> ReplyItem:
    """Write a signed reply (text, a new status, or both) for the next outbox."""
    text = _checked(text, "a reply", required=status is None)
    pk = reporter_key(store, case_id)
    with store.db.reading() as s:
        seq = (
            s.scalar(select(func.max(SentReply.seq)).where(SentReply.mailbox_id == case_id)) or 0
        ) + 1
    item = ReplyItem(
        mailbox=case_id, seq=seq, date=utc_today().isoformat(), status=status, text=text
    )
    _store_item(store, keys, item, pk)
    return item


def invite(store: DeskStore, keys: DeskKeys, questions: str) -> NewInvitation:
    """Make a witness mailbox whose first item holds the questions; return its code once."""
    questions = _checked(questions, "an invitation's questions", required=True)
    witness = PrivateKey.generate()
    code = codes.generate()
    key = new_mailbox_key(code, keys.organization, witness)
    witness_pk = bytes(witness.public_key)
    mailbox_id = case_id_of(witness_pk)
    today = utc_today()
    with store.db.transaction() as s:
        s.add(
            WitnessInvitation(
                mailbox_id=mailbox_id,
                index=key.index,
                wrapped_key=key.wrapped_key,
                reporter_pk=witness_pk,
                created_on=today,
            )
        )
        s.add(DeskCase(id=mailbox_id, reporter_pk=witness_pk, kind="invitation", opened_on=today))
    item = ReplyItem(
        mailbox=mailbox_id,
        seq=1,
        date=today.isoformat(),
        status=None,
        text=questions,
        type="questions",
    )
    _store_item(store, keys, item, bytes(witness.public_key))
    return NewInvitation(mailbox_id=mailbox_id, code=code)
