"""Mailboxes and their envelopes in storage.

This is the only code that writes reporter data. It takes a ``SealedEnvelope``
(made only by sealing or by checking an envelope's shape) and a
``MailboxKey`` (an index hash and a wrapped key), so nothing plaintext can be
handed to it by mistake.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .blobs import BlobStore
from .db import Database
from .encoding import EncodingError, b64decode
from .envelopes import SealedEnvelope, case_id
from .models import Envelope, Mailbox

INDEX_BYTES = 32
WRAPPED_KEY_BYTES = 24 + 16 + 32  # nonce, MAC, X25519 secret key
PUBLIC_KEY_BYTES = 32


class MailboxError(Exception):
    """A mailbox operation that cannot be done; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class MailboxKey:
    """What the server keeps of a code: SHA-256(lookup) and the wrapped reporter key."""

    index: bytes
    wrapped_key: bytes

    @classmethod
    def from_json(cls, doc: object) -> MailboxKey:
        if not isinstance(doc, dict) or set(doc) != {"index", "wrapped_key"}:
            raise MailboxError("mailbox", "the mailbox key has the wrong fields")
        try:
            return cls(
                index=b64decode(doc["index"], length=INDEX_BYTES),
                wrapped_key=b64decode(doc["wrapped_key"], length=WRAPPED_KEY_BYTES),
            )
        except EncodingError as exc:
            raise MailboxError("mailbox", f"the mailbox key is malformed: {exc}") from exc


@dataclass(frozen=True)
class NewMailbox:
    """A new case: its first code's key, and the reporter's public key, whose
    case id (envelopes.case_id) is the mailbox's id."""

    key: MailboxKey
    public_key: bytes

    @property
    def id(self) -> str:
        return case_id(self.public_key)

    @classmethod
    def from_json(cls, doc: object) -> NewMailbox:
        if not isinstance(doc, dict) or set(doc) != {"index", "wrapped_key", "public_key"}:
            raise MailboxError("mailbox", "the new mailbox has the wrong fields")
        try:
            public_key = b64decode(doc["public_key"], length=PUBLIC_KEY_BYTES)
        except EncodingError as exc:
            raise MailboxError("mailbox", f"the public key is malformed: {exc}") from exc
        key = MailboxKey.from_json({"index": doc["index"], "wrapped_key": doc["wrapped_key"]})
        return cls(key=key, public_key=public_key)


@dataclass(frozen=True)
class SentItem:
    """What the reporter sees of something they sent: kind, day and size only."""

    kind: str
    day: dt.date
    size: int
    copy: bytes | None = None  # sealed to the reporter, when they kept one


@dataclass(frozen=True)
class StoredReply:
    id: str
    seq: int
    sealed: bytes
    day: dt.date


@dataclass(frozen=True)
class CaseRecord:
    """Everything the server holds of one case: ciphertext, sizes and days."""

    mailbox_id: str
    kind: str
    wrapped_key: bytes
    generation: str | None  # the confirmed rotation the current code came from
    created_on: dt.date
    replies: tuple[StoredReply, ...]
    sent: tuple[SentItem, ...]


# Called inside the storing transaction to link uploaded files to the mailbox;
# raising there stores nothing.
Attach = Callable[[Session, str], None]


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def envelope_blob(envelope_id: str) -> str:
    return f"envelopes/{envelope_id}"


class Mailboxes:
    """Create mailboxes, add envelopes, list what the desk has not acknowledged."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        today: Callable[[], dt.date] = utc_today,
        pending_per_case: int = 200,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.today = today
        # Follow-ups one case may have waiting for the desk: a flood from one case
        # stops there, and a reporter is told to wait for the organization.
        self.pending_per_case = pending_per_case

    def find(self, index: bytes) -> CaseRecord | None:
        """The case whose *current* code has this index (a pending one never matches)."""
        with self.db.reading() as s:
            box = s.scalars(select(Mailbox).where(Mailbox.index == index)).one_or_none()
            return None if box is None else self._record(box)

    def record(self, mailbox_id: str) -> CaseRecord | None:
        with self.db.reading() as s:
            box = s.get(Mailbox, mailbox_id)
            return None if box is None else self._record(box)

    def _record(self, box: Mailbox) -> CaseRecord:
        return CaseRecord(
            mailbox_id=box.id,
            kind=box.kind,
            wrapped_key=box.wrapped_key,
            generation=box.rotation,
            created_on=box.created_on,
            replies=tuple(
                StoredReply(id=r.id, seq=r.seq, sealed=r.sealed, day=r.received_on)
                for r in sorted(box.replies, key=lambda r: (r.seq, r.id))
            ),
            sent=tuple(
                SentItem(kind=e.kind, day=e.received_on, size=e.size, copy=e.copy)
                for e in sorted(box.envelopes, key=lambda e: (e.received_on, e.seq))
            ),
        )

    def begin_rotation(self, mailbox_id: str, key: MailboxKey, generation: str | None) -> str:
        """Store the next code's index and wrapped key as pending; return its id.

        ``generation`` is the case's rotation when it was opened: if the code that
        opened it was rotated away since (another tab confirmed), nothing changes.
        A rotation begun earlier and never confirmed is discarded: the old code
        still works, and only the newest pending code can be confirmed.
        """
        rotation = secrets.token_hex(16)
        try:
            with self.db.transaction() as s:
                _refuse_index_in_use(s, key.index, mailbox_id)
                changed = s.execute(
                    update(Mailbox)
                    .where(Mailbox.id == mailbox_id, _same_generation(generation))
                    .values(
                        pending_index=key.index,
                        pending_wrapped_key=key.wrapped_key,
                        pending_rotation=rotation,
                        active_on=self.today(),
                    )
                    .execution_options(synchronize_session=False)
                ).rowcount  # type: ignore[attr-defined]
        except IntegrityError as exc:
            raise MailboxError("conflict", "that code cannot be used") from exc
        if changed != 1:
            raise MailboxError("superseded", "the code that opened this case was just replaced")
        return rotation

    def confirm_rotation(self, mailbox_id: str, rotation: str, generation: str | None) -> bool:
        """Make the pending code current and the old one dead, in one statement.

        ``generation`` is the case's rotation when this session opened it. Returns
        False if this rotation was already confirmed (a double submit). Raises
        MailboxError "superseded" if another opening replaced this pending code
        (the code that opened the case still works), or "rotated" if another
        opening's new code was confirmed (only that one works now).
        """
        try:
            changed = self._promote(mailbox_id, rotation)
        except IntegrityError as exc:
            raise MailboxError("conflict", "that code cannot be used") from exc
        if changed:
            return True
        with self.db.reading() as s:
            current = s.scalar(select(Mailbox.rotation).where(Mailbox.id == mailbox_id))
        if current == rotation:
            return False
        if current == generation:
            raise MailboxError(
                "superseded",
                "this new code was replaced by a newer opening of the case; "
                "the code that opened it still works",
            )
        raise MailboxError("rotated", "a newer code for this case was confirmed elsewhere")

    def discard_pending(self, mailbox_id: str, rotation: str) -> None:
        """The reporter left without confirming: the pending code is dropped, the
        old one keeps working (only if ``rotation`` is still the pending one)."""
        with self.db.transaction() as s:
            s.execute(
                update(Mailbox)
                .where(Mailbox.id == mailbox_id, Mailbox.pending_rotation == rotation)
                .values(pending_index=None, pending_wrapped_key=None, pending_rotation=None)
                .execution_options(synchronize_session=False)
            )

    def _promote(self, mailbox_id: str, rotation: str) -> bool:
        with self.db.transaction() as s:
            result = s.execute(
                update(Mailbox)
                .where(Mailbox.id == mailbox_id, Mailbox.pending_rotation == rotation)
                .values(
                    index=Mailbox.pending_index,
                    wrapped_key=Mailbox.pending_wrapped_key,
                    pending_index=None,
                    pending_wrapped_key=None,
                    pending_rotation=None,
                    rotation=rotation,
                )
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def add_envelope(
        self,
        mailbox_id: str,
        envelope: SealedEnvelope,
        attach: Attach | None = None,
        copy: bytes | None = None,
    ) -> str:
        """A follow-up message or answer to an existing case."""
        envelope_id = secrets.token_hex(16)
        blob = envelope_blob(envelope_id)
        self.blobs.put(blob, envelope.document)
        try:
            with self.db.transaction() as s:
                box = s.get(Mailbox, mailbox_id)
                if box is None:
                    raise MailboxError("no_case", "this case no longer exists")
                waiting = s.scalar(
                    select(func.count()).where(
                        Envelope.mailbox_id == mailbox_id, Envelope.acked_on.is_(None)
                    )
                )
                if (waiting or 0) >= self.pending_per_case:
                    raise MailboxError("case_full", "this case has many items waiting for the desk")
                box.active_on = self.today()
                row = _envelope_row(envelope_id, mailbox_id, envelope, self.today(), copy)
                if attach is not None:
                    attach(s, mailbox_id)
                row.seq = (
                    s.scalar(
                        select(func.max(Envelope.seq)).where(Envelope.mailbox_id == mailbox_id)
                    )
                    or 0
                ) + 1
                s.add(row)
        except BaseException:
            self.blobs.delete(blob)
            raise
        return envelope_id

    def create(
        self,
        new: NewMailbox,
        envelope: SealedEnvelope,
        attach: Attach | None = None,
        copy: bytes | None = None,
    ) -> str:
        """Store a new mailbox with its first envelope, atomically; return its id."""
        key, mailbox_id = new.key, new.id
        envelope_id = secrets.token_hex(16)
        blob = envelope_blob(envelope_id)
        self.blobs.put(blob, envelope.document)
        day = self.today()
        try:
            with self.db.transaction() as s:
                _refuse_index_in_use(s, key.index, None)
                s.add(
                    Mailbox(
                        id=mailbox_id,
                        index=key.index,
                        wrapped_key=key.wrapped_key,
                        created_on=day,
                        active_on=day,
                    )
                )
                s.flush()
                s.add(_envelope_row(envelope_id, mailbox_id, envelope, day, copy))
                if attach is not None:
                    attach(s, mailbox_id)
        except IntegrityError as exc:
            self.blobs.delete(blob)
            raise MailboxError("conflict", "that mailbox cannot be created") from exc
        except BaseException:
            self.blobs.delete(blob)
            raise
        return mailbox_id


def _refuse_index_in_use(s: Session, index: bytes, own_mailbox: str | None) -> None:
    """An index may belong to one code of one mailbox, current or pending."""
    clash = s.scalar(
        select(Mailbox.id).where(
            or_(Mailbox.index == index, Mailbox.pending_index == index),
            Mailbox.id != (own_mailbox or ""),
        )
    )
    if clash is not None:
        raise MailboxError("conflict", "that code cannot be used")


def _same_generation(generation: str | None) -> Any:
    return Mailbox.rotation.is_(None) if generation is None else Mailbox.rotation == generation


def _envelope_row(
    envelope_id: str,
    mailbox_id: str,
    envelope: SealedEnvelope,
    day: dt.date,
    copy: bytes | None = None,
) -> Envelope:
    return Envelope(
        copy=copy,
        id=envelope_id,
        mailbox_id=mailbox_id,
        kind=envelope.kind,
        sealed_by=envelope.sealed_by,
        size=envelope.size,
        sha256=envelope.sha256,
        received_on=day,
    )
