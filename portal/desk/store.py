"""What the desk keeps: envelopes exactly as received (ciphertext) and an index.

Replies the desk wrote are kept twice, both encrypted: sealed to the reporter
(what goes out) and sealed to the desk's own key (so staff can reread them).
Plaintext exists only in memory while the desk is unlocked.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Boolean, Date, Integer, LargeBinary, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..blobs import BlobStore
from ..db import Database
from .custody import CustodyLog

DB_FILE = "desk.sqlite"


class DeskBase(DeclarativeBase):
    pass


class ReceivedEnvelope(DeskBase):
    """An imported envelope; its ciphertext is in the desk's blob store."""

    __tablename__ = "received_envelopes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    mailbox_id: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    sealed_by: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    received_on: Mapped[dt.date] = mapped_column(Date)
    imported_on: Mapped[dt.date] = mapped_column(Date)
    seq: Mapped[int] = mapped_column(Integer, default=1)
    # The outbox that last carried this envelope's ack, and whether the portal applied it.
    ack_exported_in: Mapped[int | None] = mapped_column(Integer)
    ack_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)


class ReceivedAttachment(DeskBase):
    """An imported evidence file, still encrypted."""

    __tablename__ = "received_attachments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    mailbox_id: Mapped[str] = mapped_column(String(32), index=True)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    imported_on: Mapped[dt.date] = mapped_column(Date)
    ack_exported_in: Mapped[int | None] = mapped_column(Integer)
    ack_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)


class SentReply(DeskBase):
    """A reply, status or set of questions written on the desk."""

    __tablename__ = "sent_replies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    mailbox_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    written_on: Mapped[dt.date] = mapped_column(Date)
    for_reporter: Mapped[bytes] = mapped_column(LargeBinary)
    for_desk: Mapped[bytes] = mapped_column(LargeBinary)
    exported_in: Mapped[int | None] = mapped_column(Integer)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)


class WitnessInvitation(DeskBase):
    """A mailbox the desk made for a witness; the code was shown once and not kept."""

    __tablename__ = "invitations"

    mailbox_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    index: Mapped[bytes] = mapped_column(LargeBinary(32))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary(128))
    reporter_pk: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_on: Mapped[dt.date] = mapped_column(Date)
    exported_in: Mapped[int | None] = mapped_column(Integer)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)


class DeskState(DeskBase):
    """Counters: the last outbox number used and the last one the portal applied."""

    __tablename__ = "desk_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    export_seq: Mapped[int] = mapped_column(Integer, default=0)
    confirmed_seq: Mapped[int] = mapped_column(Integer, default=0)


class DeskStore:
    """The desk home's database and blob store."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = Database(f"sqlite:///{home / DB_FILE}")
        DeskBase.metadata.create_all(self.db.engine)
        with self.db.transaction() as s:
            if s.get(DeskState, 1) is None:
                s.add(DeskState(id=1, export_seq=0, confirmed_seq=0))
        self.blobs = BlobStore(home / "blobs")
        self.custody = CustodyLog(home / "custody.log")

    def has_envelope(self, envelope_id: str) -> bool:
        with self.db.reading() as s:
            return s.get(ReceivedEnvelope, envelope_id) is not None

    def case_ids(self) -> list[str]:
        """Every case: reports received and invitations made, oldest first."""
        with self.db.reading() as s:
            first: dict[str, dt.date] = {}
            for mailbox_id, day in s.execute(
                select(
                    ReceivedEnvelope.mailbox_id, func.min(ReceivedEnvelope.received_on)
                ).group_by(ReceivedEnvelope.mailbox_id)
            ):
                first[mailbox_id] = day
            for inv in s.scalars(select(WitnessInvitation)):
                first[inv.mailbox_id] = min(
                    first.get(inv.mailbox_id, inv.created_on), inv.created_on
                )
        return sorted(first, key=lambda m: (first[m], m))

    def envelopes(self, mailbox_id: str | None = None) -> list[ReceivedEnvelope]:
        with self.db.reading() as s:
            query = select(ReceivedEnvelope).order_by(
                ReceivedEnvelope.received_on, ReceivedEnvelope.seq, ReceivedEnvelope.id
            )
            if mailbox_id is not None:
                query = query.where(ReceivedEnvelope.mailbox_id == mailbox_id)
            return list(s.scalars(query))

    def replies(self, mailbox_id: str) -> list[SentReply]:
        with self.db.reading() as s:
            return list(
                s.scalars(
                    select(SentReply)
                    .where(SentReply.mailbox_id == mailbox_id)
                    .order_by(SentReply.seq)
                )
            )

    def attachment(self, attachment_id: str) -> ReceivedAttachment | None:
        with self.db.reading() as s:
            return s.get(ReceivedAttachment, attachment_id)

    def invitation(self, mailbox_id: str) -> WitnessInvitation | None:
        with self.db.reading() as s:
            return s.get(WitnessInvitation, mailbox_id)
