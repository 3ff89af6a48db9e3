"""Outbox bundles on the portal side: verify the desk's signature, apply whole.

An outbox carries replies (and statuses), witness invitations and acks of the
envelopes the desk imported. Nothing is applied unless the manifest is signed
by the desk's key, every item matches its hash, and the bundle is newer than
every outbox applied before; then it is applied in one transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.exceptions
from nacl.signing import VerifyKey
from sqlalchemy import func, select, update

from .bundles import Bundle, BundleError, Item, Manifest, open_bundle
from .encoding import EncodingError, b64decode
from .mailboxes import INDEX_BYTES, WRAPPED_KEY_BYTES, Mailboxes
from .models import Attachment, Envelope, Mailbox, OutboxImport, Reply
from .organization import Organization

_HEX_ID = re.compile(r"\A[0-9a-f]{16,64}\Z")


@dataclass(frozen=True)
class OutboxResult:
    seq: int
    replies: int = 0
    invitations: int = 0
    acked: int = 0
    skipped: tuple[str, ...] = field(default_factory=tuple)


def verify_signature(
    org: Organization, manifest_bytes: bytes, signature: bytes | None, manifest: Manifest
) -> None:
    """Raise BundleError unless the desk signed the manifest, for this organization."""
    if signature is None:
        raise BundleError("the outbox is not signed by the desk")
    try:
        VerifyKey(org.verify_key).verify(manifest_bytes, signature)
    except (nacl.exceptions.BadSignatureError, ValueError) as exc:
        raise BundleError("the outbox's signature is not the desk's") from exc
    if manifest.org not in {r.kid for r in org.encrypt}:
        raise BundleError("the outbox was made for another organization")


def _json(bundle: Bundle, item: Item) -> dict[str, Any]:
    try:
        doc = json.loads(bundle.read(item))
    except ValueError as exc:
        raise BundleError(f"{item.name} is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise BundleError(f"{item.name} is malformed")
    return doc


@dataclass
class _Plan:
    invitations: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    replies: list[tuple[str, str, int, bytes]] = field(default_factory=list)
    acks: list[str] = field(default_factory=list)


def _plan(bundle: Bundle) -> _Plan:
    """Read and check every item before anything is written."""
    plan = _Plan()
    for item in bundle.manifest.items:
        if not _HEX_ID.match(item.id):
            raise BundleError(f"item id {item.id!r} is malformed")
        if item.kind == "reply":
            mailbox, seq = item.meta.get("mailbox"), item.meta.get("seq")
            if not (
                isinstance(mailbox, str)
                and _HEX_ID.match(mailbox)
                and isinstance(seq, int)
                and seq >= 1
            ):
                raise BundleError(f"reply {item.id} names no valid case or sequence number")
            plan.replies.append((item.id, mailbox, seq, bundle.read(item)))
        elif item.kind == "invitation":
            doc = _json(bundle, item)
            try:
                index = b64decode(doc["index"], length=INDEX_BYTES)
                wrapped = b64decode(doc["wrapped_key"], length=WRAPPED_KEY_BYTES)
            except (KeyError, EncodingError) as exc:
                raise BundleError(f"invitation {item.id} is malformed") from exc
            if doc.get("mailbox") != item.id:
                raise BundleError(f"invitation {item.id} names another case")
            plan.invitations.append((item.id, index, wrapped))
        elif item.kind == "ack":
            ids = _json(bundle, item).get("envelopes")
            if not isinstance(ids, list) or not all(
                isinstance(i, str) and _HEX_ID.match(i) for i in ids
            ):
                raise BundleError(f"ack {item.id} is malformed")
            plan.acks.extend(ids)
        else:
            raise BundleError(f"unknown item kind {item.kind!r}")
    return plan


def import_outbox(mailboxes: Mailboxes, org: Organization, path: Path) -> OutboxResult:
    """Verify an outbox bundle and apply all of it in one transaction, or none of it."""
    # The signature is checked before any item is read or hashed.
    with open_bundle(path, "outbox", verify=functools.partial(verify_signature, org)) as bundle:
        seq = bundle.manifest.extra.get("seq")
        if not isinstance(seq, int) or seq < 1:
            raise BundleError("the outbox has no export number")
        plan = _plan(bundle)
        digest = hashlib.sha256(bundle.manifest_bytes).hexdigest()
    today = mailboxes.today()
    with mailboxes.db.transaction() as s:
        last = s.scalar(select(func.max(OutboxImport.seq))) or 0
        if seq <= last:
            same = s.get(OutboxImport, seq)
            if same is not None and same.sha256 == digest:
                raise BundleError(f"outbox {seq} was already imported; nothing changed")
            raise BundleError(
                f"outbox {seq} is older than outbox {last}, already imported: "
                "it is a replay or out of order; nothing changed"
            )
        s.add(OutboxImport(seq=seq, sha256=digest, applied_on=today))
        result = _apply(s, plan, today)
    return OutboxResult(seq=seq, **result)


def _apply(s: Any, plan: _Plan, today: dt.date) -> dict[str, Any]:
    invitations = 0
    for mailbox_id, index, wrapped in plan.invitations:
        if s.get(Mailbox, mailbox_id) is None:
            s.add(
                Mailbox(
                    id=mailbox_id,
                    index=index,
                    wrapped_key=wrapped,
                    kind="invitation",
                    created_on=today,
                    active_on=today,
                )
            )
            invitations += 1
    s.flush()
    replies, skipped = 0, []
    for reply_id, mailbox_id, seq, sealed in plan.replies:
        if s.get(Reply, reply_id) is not None:
            continue
        if s.get(Mailbox, mailbox_id) is None:
            skipped.append(
                f"reply {reply_id} is for case {mailbox_id}, which is not on this portal"
            )
            continue
        s.add(Reply(id=reply_id, mailbox_id=mailbox_id, seq=seq, sealed=sealed, received_on=today))
        replies += 1
    acked = 0
    if plan.acks:
        for table in (Envelope, Attachment):
            acked += s.execute(
                update(table)
                .where(table.id.in_(plan.acks), table.acked_on.is_(None))
                .values(acked_on=today)
            ).rowcount
    return {
        "replies": replies,
        "invitations": invitations,
        "acked": acked,
        "skipped": tuple(skipped),
    }


def last_applied(mailboxes: Mailboxes) -> int:
    with mailboxes.db.reading() as s:
        return s.scalar(select(func.max(OutboxImport.seq))) or 0
