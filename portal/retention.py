"""Deleting ciphertext the desk has acknowledged, after a grace period, never before."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from .mailboxes import Mailboxes, envelope_blob
from .models import Attachment, Envelope
from .uploads import attachment_blob


def purge_acknowledged(mailboxes: Mailboxes, grace_days: int) -> int:
    """Delete the ciphertext of envelopes and files acknowledged over ``grace_days`` ago."""
    cutoff = mailboxes.today() - dt.timedelta(days=grace_days)
    with mailboxes.db.reading() as s:
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
    removed = 0
    for name in names:
        if mailboxes.blobs.path(name).exists():
            mailboxes.blobs.delete(name)
            removed += 1
    return removed
