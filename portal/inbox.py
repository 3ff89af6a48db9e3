"""Inbox bundles on the portal side: every envelope and file the desk has not acknowledged."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select

from .bundles import Item, Manifest, write_bundle
from .mailboxes import Mailboxes, envelope_blob
from .models import Attachment
from .organization import Organization
from .outbox import inbox_news
from .uploads import attachment_blob


def _attachment_items(mailboxes: Mailboxes) -> list[Item]:
    with mailboxes.db.reading() as s:
        rows = s.scalars(
            select(Attachment)
            .where(Attachment.mailbox_id.is_not(None), Attachment.acked_on.is_(None))
            .order_by(Attachment.created_on, Attachment.id)
        )
        return [
            Item(
                id=row.id,
                kind="blob",
                name=f"blobs/{row.id}",
                size=row.size,
                sha256=str(row.sha256),
                meta={"mailbox": row.mailbox_id},
            )
            for row in rows
        ]


def export_inbox(mailboxes: Mailboxes, org: Organization, path: Path) -> Manifest:
    """Write an inbox bundle; exporting twice is harmless (nothing is marked sent)."""
    envelopes = [
        Item(
            id=row.id,
            kind="envelope",
            name=f"envelopes/{row.id}.json",
            size=row.size,
            sha256=row.sha256,
            meta={"mailbox": row.mailbox_id, "day": row.received_on.isoformat(), "seq": row.seq},
        )
        for row in mailboxes.unacknowledged()
    ]
    manifest = Manifest(
        type="inbox",
        org=org.encrypt[0].kid,
        created=mailboxes.today().isoformat(),
        items=tuple(envelopes + _attachment_items(mailboxes)),
        # Tells the desk which of its outboxes arrived (so it stops resending them),
        # which items of them were refused, and the newest custody head it signed.
        extra=inbox_news(mailboxes),
    )

    def open_item(item: Item) -> BinaryIO:
        name = envelope_blob(item.id) if item.kind == "envelope" else attachment_blob(item.id)
        return mailboxes.blobs.open(name)

    write_bundle(path, manifest, open_item)
    return manifest
