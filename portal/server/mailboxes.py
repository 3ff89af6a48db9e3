"""Cases in storage: mailboxes, their envelopes, replies and attached files.

This is the only code that writes or deletes a case's rows and ciphertext:
creating cases and adding envelopes, applying what the desk sends (witness
cases, replies, acknowledgments), and retention. It takes a ``SealedEnvelope``
(made only by sealing or by checking an envelope's shape) and a ``MailboxKey``
(an index hash and a wrapped key), so nothing plaintext can be handed to it by
mistake. Files still in transit belong to ``uploads.py`` until a report claims
them inside this module's storing transaction.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.common.blobs import BlobStore
from portal.common.db import Database, Prepared
from portal.common.errors import PortalError
from portal.protocol.envelopes import SealedEnvelope
from portal.protocol.mailbox import MailboxKey, NewMailbox
from portal.server.models import Attachment, Envelope, Mailbox, Reply


class MailboxError(PortalError):
    """A mailbox operation that cannot be done; ``reason`` is a stable code."""


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
Attach = Callable[[Connection, str], None]
# The request's other writes (tokens it spends, its session), made last in the
# same transaction, so a report is one commit; raising there stores nothing.
Within = Sequence[Callable[[Connection], None]]


_MAILBOXES: Table = Mailbox.__table__  # type: ignore[assignment]
_ENVELOPES: Table = Envelope.__table__  # type: ignore[assignment]
# Every report's statements, built once and run on the driver's cursor
# (db.Prepared), inside the one writer's turn.
_INDEX_USED = Prepared(
    select(_MAILBOXES.c.id).where(
        or_(_MAILBOXES.c.index == bindparam("i"), _MAILBOXES.c.pending_index == bindparam("i")),
        _MAILBOXES.c.id != bindparam("own"),
    )
)
_NEW_MAILBOX = Prepared(insert(_MAILBOXES))
_NEW_ENVELOPE = Prepared(insert(_ENVELOPES))


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def envelope_blob(envelope_id: str) -> str:
    return f"envelopes/{envelope_id}"


def attachment_blob(attachment_id: str) -> str:
    return f"attachments/{attachment_id}"


@dataclass(frozen=True)
class Refusal:
    id: str
    kind: str
    reason: str


@dataclass
class DeskItems:
    """What an outbox asks of the portal, read and checked before anything is written."""

    invitations: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    replies: list[tuple[str, str, int, bytes]] = field(default_factory=list)
    acks: list[tuple[str, str]] = field(default_factory=list)  # (id, sha256)
    figures: dict[str, Any] | None = None  # the desk's public figures (figures.py keeps them)
    refused: list[Refusal] = field(default_factory=list)


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
        also: Within = (),
    ) -> str:
        """A follow-up message or answer to an existing case."""
        envelope_id = secrets.token_hex(16)

        day = self.today()
        row = _envelope_values(envelope_id, mailbox_id, envelope, day, copy)
        envelopes = _ENVELOPES.c

        def store(c: Connection) -> None:
            touched = c.execute(
                update(_MAILBOXES).where(_MAILBOXES.c.id == mailbox_id).values(active_on=day)
            )
            if touched.rowcount != 1:
                raise MailboxError("no_case", "this case no longer exists")
            waiting = c.scalar(
                select(func.count()).where(
                    envelopes.mailbox_id == mailbox_id, envelopes.acked_on.is_(None)
                )
            )
            if (waiting or 0) >= self.pending_per_case:
                raise MailboxError("case_full", "this case has many items waiting for the desk")
            if attach is not None:
                attach(c, mailbox_id)
            last = c.scalar(
                select(func.max(envelopes.seq)).where(envelopes.mailbox_id == mailbox_id)
            )
            _NEW_ENVELOPE.count(c, {**row, "seq": (last or 0) + 1})
            for write in also:
                write(c)

        self.db.joined(store)  # one commit with the other requests writing now
        return envelope_id

    def create(
        self,
        new: NewMailbox,
        envelope: SealedEnvelope,
        attach: Attach | None = None,
        copy: bytes | None = None,
        also: Within = (),
    ) -> str:
        """Store a new mailbox with its first envelope, atomically; return its id."""
        key, mailbox_id = new.key, new.id
        day = self.today()
        box = {
            "id": mailbox_id,
            "index": key.index,
            "wrapped_key": key.wrapped_key,
            "kind": "report",
            "created_on": day,
            "active_on": day,
        }
        first = _envelope_values(secrets.token_hex(16), mailbox_id, envelope, day, copy)
        first["seq"] = 1

        def store(c: Connection) -> None:
            _refuse_index_in_use(c, key.index, None)
            _NEW_MAILBOX.count(c, box)
            _NEW_ENVELOPE.count(c, first)
            if attach is not None:
                attach(c, mailbox_id)
            for write in also:
                write(c)

        try:
            self.db.joined(store)  # one commit with the other requests writing now
        except IntegrityError as exc:
            raise MailboxError("conflict", "that mailbox cannot be created") from exc
        return mailbox_id

    def arrived_before(self, new: NewMailbox, envelope: SealedEnvelope) -> bool | None:
        """Whether this very case was stored already (a report sent again because its
        answer was lost on the way): None if no case has this mailbox, with this
        code's index and wrapped key; else whether its report is this envelope,
        byte for byte (False: the page sealed it again after a change). Only the
        browser that made the mailbox holds all three."""
        with self.db.reading() as s:
            found = s.execute(
                select(Mailbox.index, Mailbox.wrapped_key, Envelope.document)
                .join(Envelope, Envelope.mailbox_id == Mailbox.id)
                .where(Mailbox.id == new.id, Envelope.seq == 1)
            ).one_or_none()
        if found is None or (found[0], found[1]) != (new.key.index, new.key.wrapped_key):
            return None
        return found[2] is not None and bytes(found[2]) == envelope.document

    def document(self, envelope_id: str) -> bytes:
        """An envelope's ciphertext: in its row, or in the blob store for one stored
        before envelopes kept theirs (FileNotFoundError once purged)."""
        with self.db.reading() as s:
            found = s.execute(
                select(Envelope.document).where(Envelope.id == envelope_id)
            ).one_or_none()
        if found is not None and found[0] is not None:
            return found[0]
        return self.blobs.read(envelope_blob(envelope_id))

    def apply_desk_items(
        self, s: Session, plan: DeskItems, today: dt.date
    ) -> tuple[dict[str, int], list[Refusal]]:
        """Inside an outbox's transaction: new witness cases, replies, and
        acknowledgments of exactly the bytes the desk holds."""
        refusals: list[Refusal] = []
        invitations = 0
        for mailbox_id, index, wrapped in plan.invitations:
            if s.get(Mailbox, mailbox_id) is not None:
                continue  # sent again: it was applied before
            clash = s.scalar(
                select(Mailbox.id).where(
                    or_(Mailbox.index == index, Mailbox.pending_index == index)
                )
            )
            if clash is not None:
                refusals.append(
                    Refusal(
                        mailbox_id, "invitation", "its code clashes with a case's: make a new one"
                    )
                )
                continue
            s.add(
                Mailbox(
                    id=mailbox_id,
                    index=index,
                    wrapped_key=wrapped,
                    kind="invitation",
                    created_on=today,
                    active_on=today,
                )
            )
            invitations += 1
        s.flush()
        replies = 0
        for reply_id, mailbox_id, seq, sealed in plan.replies:
            if s.get(Reply, reply_id) is not None:
                continue
            if s.get(Mailbox, mailbox_id) is None:
                refusals.append(Refusal(reply_id, "reply", "its case is not on this portal"))
                continue
            s.add(
                Reply(id=reply_id, mailbox_id=mailbox_id, seq=seq, sealed=sealed, received_on=today)
            )
            replies += 1
        acked = 0
        for item_id, sha256 in plan.acks:
            # Only exactly what the desk holds: an ack of other bytes under this id
            # (a relabelled or swapped item) deletes nothing.
            for table in (Envelope, Attachment):
                acked += s.execute(
                    update(table)
                    .where(table.id == item_id, table.sha256 == sha256, table.acked_on.is_(None))
                    .values(acked_on=today)
                ).rowcount  # type: ignore[attr-defined]
        return {"replies": replies, "invitations": invitations, "acked": acked}, refusals

    def purge_acknowledged(self, grace_days: int) -> int:
        """Delete the ciphertext of envelopes and files acknowledged over ``grace_days`` ago."""
        cutoff = self.today() - dt.timedelta(days=grace_days)
        with self.db.transaction() as s:
            cleared = s.execute(
                update(Envelope)
                .where(
                    Envelope.acked_on.is_not(None),
                    Envelope.acked_on < cutoff,
                    Envelope.document.is_not(None),
                )
                .values(document=None)
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
        with self.db.reading() as s:
            names = [
                envelope_blob(i)
                for i in s.scalars(
                    select(Envelope.id).where(
                        Envelope.acked_on.is_not(None), Envelope.acked_on < cutoff
                    )
                )
            ]
            names += [
                attachment_blob(i)
                for i in s.scalars(
                    select(Attachment.id).where(
                        Attachment.acked_on.is_not(None), Attachment.acked_on < cutoff
                    )
                )
            ]
        removed = int(cleared)
        for name in names:  # files, and envelopes stored before migration 0012
            if self.blobs.path(name).exists():
                self.blobs.delete(name)
                removed += 1
        return removed

    def purge_idle(self, retention_days: int) -> int:
        """Delete mailboxes untouched for ``retention_days`` whose every envelope and
        file the desk has acknowledged. Unacknowledged evidence is never deleted."""
        cutoff = self.today() - dt.timedelta(days=retention_days)
        names: list[str] = []
        count = 0
        with self.db.transaction() as s:
            for box in s.scalars(select(Mailbox).where(Mailbox.active_on < cutoff)):
                pending = s.scalar(
                    select(Envelope.id).where(
                        Envelope.mailbox_id == box.id, Envelope.acked_on.is_(None)
                    )
                )
                pending = pending or s.scalar(
                    select(Attachment.id).where(
                        Attachment.mailbox_id == box.id, Attachment.acked_on.is_(None)
                    )
                )
                if pending is not None:
                    continue
                names += [
                    envelope_blob(i)
                    for i in s.scalars(select(Envelope.id).where(Envelope.mailbox_id == box.id))
                ]
                names += [
                    attachment_blob(i)
                    for i in s.scalars(select(Attachment.id).where(Attachment.mailbox_id == box.id))
                ]
                for table in (Envelope, Attachment, Reply):
                    s.execute(delete(table).where(table.mailbox_id == box.id))
                s.delete(box)
                count += 1
        for name in names:  # after the commit: a crash here leaves only stray ciphertext
            self.blobs.delete(name)
        return count

    def sweep_orphans(self, older_than_seconds: int = 3600) -> int:
        """Remove files a crash left behind: temp files of interrupted writes, and
        envelope blobs written just before a transaction that never committed."""
        cutoff = time.time() - older_than_seconds
        with self.db.reading() as s:
            known = set(s.scalars(select(Envelope.id)))
        removed = 0
        for path in self.blobs.root.glob("*/*"):
            try:
                old = path.stat().st_mtime < cutoff
            except FileNotFoundError:
                continue
            stray = path.name.startswith(".tmp-") or (
                path.parent.name == "envelopes" and path.name not in known
            )
            if old and stray:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _refuse_index_in_use(s: Session | Connection, index: bytes, own_mailbox: str | None) -> None:
    """An index may belong to one code of one mailbox, current or pending."""
    if isinstance(s, Session):
        s.flush()  # the statement below runs on the driver: no autoflush
        s = s.connection()
    if _INDEX_USED.first(s, {"i": index, "own": own_mailbox or ""}) is not None:
        raise MailboxError("conflict", "that code cannot be used")


def _same_generation(generation: str | None) -> Any:
    return Mailbox.rotation.is_(None) if generation is None else Mailbox.rotation == generation


def _envelope_values(
    envelope_id: str,
    mailbox_id: str,
    envelope: SealedEnvelope,
    day: dt.date,
    copy: bytes | None = None,
) -> dict[str, Any]:
    return {
        "copy": copy,
        "document": envelope.document,
        "id": envelope_id,
        "mailbox_id": mailbox_id,
        "kind": envelope.kind,
        "sealed_by": envelope.sealed_by,
        "size": envelope.size,
        "sha256": envelope.sha256,
        "received_on": day,
    }
