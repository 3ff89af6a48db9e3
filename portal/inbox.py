"""Inbox bundles on the portal side: what the desk has not acknowledged yet.

An inbox holds at most ``limit`` items, taken in turns across cases (every
case's oldest item, then every case's second, …), so a flood from some cases
cannot crowd the others out, and an inbox stays small enough to carry and
read whatever piles up; when items are left for the next one, the manifest
says ``"more": true``. Exporting twice is harmless: nothing is marked sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .bundles import Item, Manifest, write_bundle
from .mailboxes import Mailboxes, envelope_blob
from .models import Attachment, Envelope
from .organization import Organization
from .outbox import inbox_news
from .uploads import attachment_blob


def _in_turns(s: Session, table: Any, order: tuple[Any, ...], limit: int) -> list[Any]:
    """Unacknowledged rows of ``table``, each case's in ``order``, cases taking turns."""
    turn = func.row_number().over(partition_by=table.mailbox_id, order_by=order).label("turn")
    ranked = (
        select(table.id, turn)
        .where(table.mailbox_id.is_not(None), table.acked_on.is_(None))
        .subquery()
    )
    ids = s.scalars(select(ranked.c.id).order_by(ranked.c.turn, ranked.c.id).limit(limit)).all()
    rows = {row.id: row for row in s.scalars(select(table).where(table.id.in_(ids)))}
    return [rows[i] for i in ids]


def _items(mailboxes: Mailboxes, limit: int) -> tuple[list[Item], bool]:
    with mailboxes.db.reading() as s:
        envelopes = _in_turns(s, Envelope, (Envelope.received_on, Envelope.seq), limit + 1)
        files = _in_turns(
            s, Attachment, (Attachment.created_on, Attachment.id), limit + 1 - len(envelopes)
        )
    items = [
        Item(
            id=row.id,
            kind="envelope",
            name=f"envelopes/{row.id}.json",
            size=row.size,
            sha256=row.sha256,
            meta={"mailbox": row.mailbox_id, "day": row.received_on.isoformat(), "seq": row.seq},
        )
        for row in envelopes
    ] + [
        Item(
            id=row.id,
            kind="blob",
            name=f"blobs/{row.id}",
            size=row.size,
            sha256=str(row.sha256),
            meta={"mailbox": row.mailbox_id},
        )
        for row in files
    ]
    return items[:limit], len(items) > limit


def export_inbox(
    mailboxes: Mailboxes, org: Organization, path: Path, limit: int = 20_000
) -> Manifest:
    """Write an inbox bundle of at most ``limit`` items."""
    items, more = _items(mailboxes, limit)
    manifest = Manifest(
        type="inbox",
        org=org.encrypt[0].kid,
        created=mailboxes.today().isoformat(),
        items=tuple(items),
        # Tells the desk which of its outboxes arrived (so it stops resending them),
        # which items of them were refused, the newest custody head it signed, and
        # whether more items wait for the next inbox.
        extra={**inbox_news(mailboxes), "more": more},
    )

    def open_item(item: Item) -> BinaryIO:
        name = envelope_blob(item.id) if item.kind == "envelope" else attachment_blob(item.id)
        return mailboxes.blobs.open(name)

    write_bundle(path, manifest, open_item)
    return manifest
