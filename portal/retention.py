"""Deleting ciphertext the desk has acknowledged, after a grace period, never before."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import delete, select

from .mailboxes import Mailboxes, envelope_blob
from .models import Attachment, Envelope, Mailbox, Reply
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


def purge_idle_mailboxes(mailboxes: Mailboxes, retention_days: int) -> int:
    """Delete mailboxes untouched for ``retention_days`` whose every envelope and
    file the desk has acknowledged. Unacknowledged evidence is never deleted."""
    cutoff = mailboxes.today() - dt.timedelta(days=retention_days)
    names: list[str] = []
    count = 0
    with mailboxes.db.transaction() as s:
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
        mailboxes.blobs.delete(name)
    return count


def sweep_orphans(mailboxes: Mailboxes, older_than_seconds: int = 3600) -> int:
    """Remove files a crash left behind: temp files of interrupted writes, and
    envelope blobs written just before a transaction that never committed."""
    cutoff = time.time() - older_than_seconds
    with mailboxes.db.reading() as s:
        known = set(s.scalars(select(Envelope.id)))
    removed = 0
    for path in mailboxes.blobs.root.glob("*/*"):
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
