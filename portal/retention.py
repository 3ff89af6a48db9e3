"""Deleting ciphertext the desk has acknowledged, after a grace period, never before."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from .mailboxes import Mailboxes, envelope_blob
from .models import Envelope


def purge_acknowledged(mailboxes: Mailboxes, grace_days: int) -> int:
    """Delete the blobs of envelopes acknowledged more than ``grace_days`` ago."""
    cutoff = mailboxes.today() - dt.timedelta(days=grace_days)
    with mailboxes.db.reading() as s:
        ids = list(
            s.scalars(
                select(Envelope.id).where(
                    Envelope.acked_on.is_not(None), Envelope.acked_on < cutoff
                )
            )
        )
    removed = 0
    for envelope_id in ids:
        path = mailboxes.blobs.path(envelope_blob(envelope_id))
        if path.exists():
            mailboxes.blobs.delete(envelope_blob(envelope_id))
            removed += 1
    return removed
