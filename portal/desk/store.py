"""What the desk keeps: envelopes exactly as received (ciphertext) and an index.

Plaintext exists only in memory while the desk is unlocked.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Date, Integer, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..blobs import BlobStore
from ..db import Database

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


class DeskStore:
    """The desk home's database and blob store."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = Database(f"sqlite:///{home / DB_FILE}")
        DeskBase.metadata.create_all(self.db.engine)
        self.blobs = BlobStore(home / "blobs")

    def has_envelope(self, envelope_id: str) -> bool:
        with self.db.reading() as s:
            return s.get(ReceivedEnvelope, envelope_id) is not None

    def case_ids(self) -> list[str]:
        with self.db.reading() as s:
            rows = s.execute(
                select(ReceivedEnvelope.mailbox_id, func.min(ReceivedEnvelope.received_on))
                .group_by(ReceivedEnvelope.mailbox_id)
                .order_by(func.min(ReceivedEnvelope.received_on), ReceivedEnvelope.mailbox_id)
            )
            return [r[0] for r in rows]

    def envelopes(self, mailbox_id: str | None = None) -> list[ReceivedEnvelope]:
        with self.db.reading() as s:
            query = select(ReceivedEnvelope).order_by(
                ReceivedEnvelope.received_on, ReceivedEnvelope.id
            )
            if mailbox_id is not None:
                query = query.where(ReceivedEnvelope.mailbox_id == mailbox_id)
            return list(s.scalars(query))
