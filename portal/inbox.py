"""Inbox bundles on the portal side: every envelope the desk has not acknowledged."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from .bundles import Item, Manifest, write_bundle
from .mailboxes import Mailboxes, envelope_blob
from .organization import Organization
from .outbox import last_applied


def export_inbox(mailboxes: Mailboxes, org: Organization, path: Path) -> Manifest:
    """Write an inbox bundle; exporting twice is harmless (nothing is marked sent)."""
    items = tuple(
        Item(
            id=row.id,
            kind="envelope",
            name=f"envelopes/{row.id}.json",
            size=row.size,
            sha256=row.sha256,
            meta={"mailbox": row.mailbox_id, "day": row.received_on.isoformat(), "seq": row.seq},
        )
        for row in mailboxes.unacknowledged()
    )
    manifest = Manifest(
        type="inbox",
        org=org.encrypt[0].kid,
        created=mailboxes.today().isoformat(),
        items=items,
        # Tells the desk which of its outboxes arrived, so it stops resending them.
        extra={"outbox_seq": last_applied(mailboxes)},
    )

    def open_item(item: Item) -> BinaryIO:
        return mailboxes.blobs.open(envelope_blob(item.id))

    write_bundle(path, manifest, open_item)
    return manifest
