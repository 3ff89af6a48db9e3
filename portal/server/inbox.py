"""Inbox bundles on the portal side: what the desk has not acknowledged yet.

An inbox holds at most ``limit`` items, taken in turns across cases (every
case's oldest item, then every case's second, …) and, within a turn, in a
fresh random order each time, so neither a flood from some cases nor junk the
desk keeps refusing can crowd the others out for good; envelopes and files
share the turns. When items are left for the next inbox, the manifest says
``"more": true``. Every item is hashed from disk as it is listed: one whose
bytes no longer match what was recorded is left out (and logged) rather than
make the desk refuse the whole bundle. Exporting twice is harmless: nothing is
marked sent. Every inbox also carries every questionnaire definition the portal
has served (public text, a few kilobytes each), named by its digest.
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.protocol.bundles import Item, Manifest, write_bundle
from portal.protocol.organization import Organization
from portal.server.mailboxes import Mailboxes, attachment_blob
from portal.server.models import Attachment, Envelope
from portal.server.outbox import inbox_news
from portal.server.questionnaires import definitions

log = logging.getLogger(__name__)
_shuffle = random.SystemRandom()


def _turns(s: Session, table: Any, order: tuple[Any, ...]) -> list[tuple[int, str]]:
    """(turn, id) of every unacknowledged row of ``table``: a case's first is turn 1."""
    turn = func.row_number().over(partition_by=table.mailbox_id, order_by=order)
    return [
        (int(t), str(i))
        for i, t in s.execute(
            select(table.id, turn).where(table.mailbox_id.is_not(None), table.acked_on.is_(None))
        )
    ]


def _chosen(mailboxes: Mailboxes, limit: int) -> tuple[list[Envelope], list[Attachment], bool]:
    with mailboxes.db.reading() as s:
        ranked = [
            (turn, _shuffle.random(), kind, item_id)
            for kind, table, order in (
                ("envelope", Envelope, (Envelope.received_on, Envelope.seq)),
                ("blob", Attachment, (Attachment.created_on, Attachment.id)),
            )
            for turn, item_id in _turns(s, table, order)
        ]
        ranked.sort()
        chosen = ranked[:limit]
        envelope_ids = [i for _, _, kind, i in chosen if kind == "envelope"]
        blob_ids = [i for _, _, kind, i in chosen if kind == "blob"]
        envelopes = list(s.scalars(select(Envelope).where(Envelope.id.in_(envelope_ids))))
        blobs = list(s.scalars(select(Attachment).where(Attachment.id.in_(blob_ids))))
    return envelopes, blobs, len(ranked) > limit


def _intact(open_item: Callable[[], BinaryIO], sha256: str | None) -> bool:
    digest = hashlib.sha256()
    try:
        with open_item() as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
    except FileNotFoundError:
        return False
    return digest.hexdigest() == sha256


def _opener(mailboxes: Mailboxes, kind: str, item_id: str) -> Callable[[], BinaryIO]:
    """How to read an envelope's or a file's ciphertext."""
    if kind == "envelope":
        return lambda: io.BytesIO(mailboxes.document(item_id))
    return lambda: mailboxes.blobs.open(attachment_blob(item_id))


def _items(mailboxes: Mailboxes, limit: int) -> tuple[list[Item], bool]:
    envelopes, blobs, more = _chosen(mailboxes, limit)
    items = []
    for row in sorted(envelopes, key=lambda r: (r.received_on, r.seq, r.id)):
        if not _intact(_opener(mailboxes, "envelope", row.id), row.sha256):
            log.warning("envelope %s does not match its recorded hash: left out", row.id)
            continue
        items.append(
            Item(
                id=row.id,
                kind="envelope",
                name=f"envelopes/{row.id}.json",
                size=row.size,
                sha256=row.sha256,
                meta={
                    "mailbox": row.mailbox_id,
                    "day": row.received_on.isoformat(),
                    "seq": row.seq,
                },
            )
        )
    for blob in sorted(blobs, key=lambda r: (r.created_on, r.id)):
        if not _intact(_opener(mailboxes, "blob", blob.id), blob.sha256):
            log.warning("file %s does not match its recorded hash: left out", blob.id)
            continue
        items.append(
            Item(
                id=blob.id,
                kind="blob",
                name=f"blobs/{blob.id}",
                size=blob.size,
                sha256=str(blob.sha256),
                meta={"mailbox": blob.mailbox_id},
            )
        )
    return items, more


def export_inbox(
    mailboxes: Mailboxes, org: Organization, path: Path, limit: int = 20_000
) -> Manifest:
    """Write an inbox bundle of at most ``limit`` items."""
    items, more = _items(mailboxes, limit)
    forms = dict(definitions(mailboxes.db))
    items += [
        Item(id=d, kind="questionnaire", name=f"questionnaires/{d}.json", size=len(b), sha256=d)
        for d, b in forms.items()
    ]
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
        if item.kind == "questionnaire":
            return io.BytesIO(forms[item.id])
        return _opener(mailboxes, item.kind, item.id)()

    write_bundle(path, manifest, open_item)
    return manifest
