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

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .blobs import BlobStore
from .db import Database
from .encoding import EncodingError, b64decode
from .envelopes import SealedEnvelope
from .models import Envelope, Mailbox

INDEX_BYTES = 32
WRAPPED_KEY_BYTES = 24 + 16 + 32  # nonce, MAC, X25519 secret key


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


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def envelope_blob(envelope_id: str) -> str:
    return f"envelopes/{envelope_id}"


class Mailboxes:
    """Create mailboxes, add envelopes, list what the desk has not acknowledged."""

    def __init__(
        self, db: Database, blobs: BlobStore, today: Callable[[], dt.date] = utc_today
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.today = today

    def create(self, key: MailboxKey, envelope: SealedEnvelope) -> str:
        """Store a new mailbox with its first envelope, atomically; return its id."""
        mailbox_id = secrets.token_hex(10)
        envelope_id = secrets.token_hex(16)
        blob = envelope_blob(envelope_id)
        self.blobs.put(blob, envelope.document)
        day = self.today()
        try:
            with self.db.transaction() as s:
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
                s.add(_envelope_row(envelope_id, mailbox_id, envelope, day))
        except IntegrityError as exc:
            self.blobs.delete(blob)
            raise MailboxError("conflict", "that mailbox cannot be created") from exc
        except BaseException:
            self.blobs.delete(blob)
            raise
        return mailbox_id

    def unacknowledged(self) -> list[Envelope]:
        """Every envelope the desk has not yet acknowledged, oldest first."""
        with self.db.reading() as s:
            rows = s.scalars(
                select(Envelope).where(Envelope.acked_on.is_(None)).order_by(Envelope.received_on)
            )
            return list(rows)


def _envelope_row(
    envelope_id: str, mailbox_id: str, envelope: SealedEnvelope, day: dt.date
) -> Envelope:
    return Envelope(
        id=envelope_id,
        mailbox_id=mailbox_id,
        kind=envelope.kind,
        sealed_by=envelope.sealed_by,
        size=envelope.size,
        sha256=envelope.sha256,
        received_on=day,
    )
