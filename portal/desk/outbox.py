"""Exporting the desk's signed outbox: replies, invitations, and acks of imports."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select, update

from ..bundles import Item, Manifest, write_bundle
from ..encoding import b64encode
from ..mailboxes import utc_today
from .keystore import DeskKeys
from .store import (
    DeskState,
    DeskStore,
    ReceivedAttachment,
    ReceivedEnvelope,
    SentReply,
    WitnessInvitation,
)


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

    The export number is reserved before the file is written, so a failed
    write leaves a gap (harmless) rather than a number used twice.
    """
    with store.db.transaction() as s:
        state = s.get(DeskState, 1)
        assert state is not None
        state.export_seq += 1
        seq = state.export_seq
        invitations = list(s.scalars(select(WitnessInvitation).where(~WitnessInvitation.confirmed)))
        replies = list(
            s.scalars(
                select(SentReply)
                .where(~SentReply.confirmed)
                .order_by(SentReply.mailbox_id, SentReply.seq)
            )
        )
        acks = list(s.scalars(select(ReceivedEnvelope.id).where(~ReceivedEnvelope.ack_confirmed)))
        file_acks = list(
            s.scalars(select(ReceivedAttachment.id).where(~ReceivedAttachment.ack_confirmed))
        )
        for table, ids, column in (
            (WitnessInvitation, [i.mailbox_id for i in invitations], WitnessInvitation.mailbox_id),
            (SentReply, [r.id for r in replies], SentReply.id),
        ):
            if ids:
                s.execute(update(table).where(column.in_(ids)).values(exported_in=seq))
        if acks:
            s.execute(
                update(ReceivedEnvelope)
                .where(ReceivedEnvelope.id.in_(acks))
                .values(ack_exported_in=seq)
            )
        if file_acks:
            s.execute(
                update(ReceivedAttachment)
                .where(ReceivedAttachment.id.in_(file_acks))
                .values(ack_exported_in=seq)
            )
        acks += file_acks

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
    if acks:
        ack_id = secrets.token_hex(16)
        entries.append(
            _item("ack", ack_id, f"acks/{ack_id}.json", json.dumps({"envelopes": acks}).encode())
        )
    data = {item.name: content for item, content in entries}
    manifest = Manifest(
        type="outbox",
        org=keys.organization.encrypt[0].kid,
        created=utc_today().isoformat(),
        items=tuple(i for i, _ in entries),
        extra={"seq": seq},
    )
    signature = keys.signing.sign(manifest.to_bytes()).signature

    def open_item(item: Item) -> BinaryIO:
        return io.BytesIO(data[item.name])

    write_bundle(path, manifest, open_item, signature=bytes(signature))
    store.custody.append(
        "export",
        seq=seq,
        bundle_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        items=[{"id": i.id, "kind": i.kind, "sha256": i.sha256} for i in manifest.items],
    )
    return manifest


def confirm_applied(store: DeskStore, outbox_seq: int) -> None:
    """The portal says it applied outboxes up to ``outbox_seq``: stop resending their items."""
    with store.db.transaction() as s:
        state = s.get(DeskState, 1)
        assert state is not None
        # A desk restored from a backup catches up: its next outbox must be newer
        # than anything the portal has applied, or the portal would refuse it.
        state.export_seq = max(state.export_seq, outbox_seq)
        if outbox_seq <= state.confirmed_seq:
            return
        state.confirmed_seq = outbox_seq
        for table, column in (
            (WitnessInvitation, WitnessInvitation.exported_in),
            (SentReply, SentReply.exported_in),
        ):
            s.execute(update(table).where(column <= outbox_seq).values(confirmed=True))
        for received in (ReceivedEnvelope, ReceivedAttachment):
            s.execute(
                update(received)
                .where(received.ack_exported_in <= outbox_seq)
                .values(ack_confirmed=True)
            )
