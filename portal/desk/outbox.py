"""Exporting the desk's signed outbox: replies, invitations, acks and discards."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select, update

from portal.desk import transparency
from portal.desk.custody import checkpoint_message
from portal.desk.keystore import DeskKeys
from portal.desk.store import (
    AckAlias,
    Checkpoint,
    DamagedItem,
    DeskState,
    DeskStore,
    ReceivedAttachment,
    ReceivedEnvelope,
    SentReply,
    WitnessInvitation,
    utc_today,
)
from portal.protocol.bundles import Item, Manifest, write_bundle
from portal.protocol.encoding import b64encode


def _item(kind: str, item_id: str, name: str, data: bytes, **meta: object) -> tuple[Item, bytes]:
    return (
        Item(
            id=item_id,
            kind=kind,
            name=name,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            meta=dict(meta),
        ),
        data,
    )


def export_outbox(store: DeskStore, keys: DeskKeys, path: Path) -> Manifest:
    """Sign and write everything the portal has not yet confirmed applying.

    The outbox names its number and its ``base``: the newest outbox the
    portal said (in an inbox) it applied. Since it carries every item not
    confirmed by then, the portal applies it only if it has applied ``base``
    itself; so a false "applied" in an inbox cannot make a reply vanish. It
    also carries the custody log's head, signed, for the portal to keep. The
    number is used only once the bundle is written.
    """
    with store.changing():
        return _export(store, keys, path)


def _export(store: DeskStore, keys: DeskKeys, path: Path) -> Manifest:
    with store.db.reading() as s:
        state = s.get(DeskState, 1)
        assert state is not None
        seq = max(state.export_seq, state.portal_seq) + 1
        base = state.confirmed_seq
        invitations = list(s.scalars(select(WitnessInvitation).where(~WitnessInvitation.confirmed)))
        replies = list(
            s.scalars(
                select(SentReply)
                .where(~SentReply.confirmed)
                .order_by(SentReply.mailbox_id, SentReply.seq)
            )
        )
        # Acks and discards name the portal's id *and* the bytes the desk holds, so
        # the portal deletes nothing but exactly what the desk checked (or gave up on).
        acks = [
            (row.id, row.sha256)
            for table in (ReceivedEnvelope, ReceivedAttachment, AckAlias)
            for row in s.execute(select(table.id, table.sha256).where(~table.ack_confirmed))
        ]
        discards = [
            (row.id, row.sha256)
            for row in s.execute(
                select(DamagedItem.id, DamagedItem.sha256).where(
                    DamagedItem.discarded, ~DamagedItem.discard_confirmed
                )
            )
        ]

    entries = [
        _item(
            "invitation",
            inv.mailbox_id,
            f"invitations/{inv.mailbox_id}.json",
            json.dumps(
                {
                    "mailbox": inv.mailbox_id,
                    "index": b64encode(inv.index),
                    "wrapped_key": b64encode(inv.wrapped_key),
                }
            ).encode(),
        )
        for inv in invitations
    ]
    entries += [
        _item("reply", r.id, f"replies/{r.id}.bin", r.for_reporter, mailbox=r.mailbox_id, seq=r.seq)
        for r in replies
    ]
    figures = transparency.published(store)
    if figures is not None:
        public = json.dumps(figures, sort_keys=True).encode()
        figures_id = hashlib.sha256(public).hexdigest()[:32]
        entries.append(_item("figures", figures_id, f"figures/{figures_id}.json", public))
    if acks or discards:
        ack_id = secrets.token_hex(16)
        body = {
            "envelopes": [{"id": i, "sha256": h} for i, h in acks],
            "discard": [{"id": i, "sha256": h} for i, h in discards],
        }
        entries.append(_item("ack", ack_id, f"acks/{ack_id}.json", json.dumps(body).encode()))
    # The export is logged first, so the head the desk signs (and the portal keeps)
    # covers the export itself.
    store.custody.append(
        "export",
        keys.person,
        seq=seq,
        base=base,
        items=[{"id": i.id, "kind": i.kind, "sha256": i.sha256} for i, _ in entries],
    )
    n, head = store.custody.head()
    anchor = bytes(keys.signing.sign(checkpoint_message(n, head)).signature)
    checkpoint = {"n": n, "hash": head, "sig": b64encode(anchor)}
    data = {item.name: content for item, content in entries}
    manifest = Manifest(
        type="outbox",
        org=keys.organization.encrypt[0].kid,
        created=utc_today().isoformat(),
        items=tuple(i for i, _ in entries),
        extra={"seq": seq, "base": base, "checkpoint": checkpoint},
    )
    signature = keys.signing.sign(manifest.to_bytes()).signature

    def open_item(item: Item) -> BinaryIO:
        return io.BytesIO(data[item.name])

    write_bundle(path, manifest, open_item, signature=bytes(signature))
    with store.db.transaction() as s:
        state = s.get(DeskState, 1)
        assert state is not None
        state.export_seq, state.portal_seq = seq, 0
        acked = [h for _, h in acks]
        for table, keys_, column, mark in (
            (
                WitnessInvitation,
                [i.mailbox_id for i in invitations],
                WitnessInvitation.mailbox_id,
                "exported_in",
            ),
            (SentReply, [r.id for r in replies], SentReply.id, "exported_in"),
            (ReceivedEnvelope, acked, ReceivedEnvelope.sha256, "ack_exported_in"),
            (ReceivedAttachment, acked, ReceivedAttachment.sha256, "ack_exported_in"),
            (AckAlias, acked, AckAlias.sha256, "ack_exported_in"),
            (DamagedItem, [h for _, h in discards], DamagedItem.sha256, "discard_exported_in"),
        ):
            if keys_:
                s.execute(update(table).where(column.in_(keys_)).values({mark: seq}))
        s.merge(Checkpoint(n=n, hash=head, signature=anchor, outbox=seq))
    return manifest
