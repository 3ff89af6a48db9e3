"""Outbox bundles on the portal side: verify the desk's signature, then apply.

An outbox carries replies (and statuses), witness invitations, acks and
discards of items the desk imported, and the desk's signed custody head.
Nothing is applied unless the manifest is signed by the desk's key, every item
matches its hash, its number is newer than every outbox applied before and its
base is one applied here; then it is applied in one transaction, where an item
that cannot be applied is refused alone and reported back (docs/protocol.md).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.exceptions
from nacl.signing import VerifyKey
from sqlalchemy import delete, func, select

from portal.protocol.bundles import Bundle, BundleError, Item, Manifest, open_bundle
from portal.protocol.encoding import EncodingError, b64decode, b64encode
from portal.protocol.mailbox import INDEX_BYTES, WRAPPED_KEY_BYTES
from portal.protocol.organization import Organization
from portal.server import figures
from portal.server.mailboxes import DeskItems, Mailboxes, Refusal
from portal.server.models import OutboxImport, RefusedItem

_HEX_ID = re.compile(r"\A[0-9a-f]{16,64}\Z")
_SHA256 = re.compile(r"\A[0-9a-f]{64}\Z")
MAX_SEQ = 2**31 - 1
MAX_ITEM_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class OutboxResult:
    seq: int
    replies: int = 0
    invitations: int = 0
    acked: int = 0
    refused: tuple[str, ...] = field(default_factory=tuple)  # one line per item refused


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
    except (ValueError, RecursionError) as exc:
        raise BundleError(f"{item.name} is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise BundleError(f"{item.name} is malformed")
    return doc


def _plan(bundle: Bundle) -> DeskItems:
    """Read and check every item before anything is written; a bad one is refused alone."""
    plan = DeskItems()
    for item in bundle.manifest.items:
        try:
            _plan_item(bundle, item, plan)
        except BundleError as exc:
            item_id = (
                item.id if _HEX_ID.match(item.id) else hashlib.sha256(item.id.encode()).hexdigest()
            )
            plan.refused.append(Refusal(item_id, item.kind[:16], str(exc)[:200]))
    return plan


def _plan_item(bundle: Bundle, item: Item, plan: DeskItems) -> None:
    if not _HEX_ID.match(item.id):
        raise BundleError("its id is malformed")
    if item.kind == "reply":
        mailbox, seq = item.meta.get("mailbox"), item.meta.get("seq")
        if not (
            isinstance(mailbox, str)
            and _HEX_ID.match(mailbox)
            and isinstance(seq, int)
            and 1 <= seq <= MAX_SEQ
        ):
            raise BundleError("it names no valid case or sequence number")
        plan.replies.append((item.id, mailbox, seq, bundle.read(item, max_bytes=MAX_ITEM_BYTES)))
    elif item.kind == "invitation":
        doc = _json(bundle, item)
        try:
            index = b64decode(doc["index"], length=INDEX_BYTES)
            wrapped = b64decode(doc["wrapped_key"], length=WRAPPED_KEY_BYTES)
        except (KeyError, EncodingError) as exc:
            raise BundleError("it is malformed") from exc
        if doc.get("mailbox") != item.id:
            raise BundleError("it names another case")
        plan.invitations.append((item.id, index, wrapped))
    elif item.kind == "ack":
        doc = _json(bundle, item)
        named = [*doc.get("envelopes", []), *doc.get("discard", [])]
        if not all(
            isinstance(n, dict)
            and isinstance(n.get("id"), str)
            and _HEX_ID.match(n["id"])
            and isinstance(n.get("sha256"), str)
            and _SHA256.match(n["sha256"])
            for n in named
        ):
            raise BundleError("it is malformed")
        plan.acks.extend((n["id"], n["sha256"]) for n in named)
    elif item.kind == "figures":
        doc = _json(bundle, item)
        try:
            figures.checked(doc, 2)
        except figures.FiguresRefused as exc:
            raise BundleError(str(exc)) from exc
        plan.figures = doc
    else:
        raise BundleError("this portal does not know its kind")


def _counters(extra: dict[str, Any]) -> tuple[int, int]:
    seq, base = extra.get("seq"), extra.get("base")
    for value, what in ((seq, "export number"), (base, "base")):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEQ:
            raise BundleError(f"the outbox's {what} is missing or out of range")
    assert isinstance(seq, int) and isinstance(base, int)
    if seq < 1 or base >= seq:
        raise BundleError("the outbox's numbers are inconsistent")
    return seq, base


def _checkpoint(extra: dict[str, Any]) -> tuple[int, str, bytes] | None:
    """The desk's signed custody head (the whole manifest is signed, so it is the desk's)."""
    raw = extra.get("checkpoint")
    try:
        n, head, sig = raw["n"], raw["hash"], b64decode(raw["sig"], length=64)  # type: ignore[index]
    except (KeyError, TypeError, EncodingError):
        return None
    if not (isinstance(n, int) and 0 <= n <= MAX_SEQ * 1024 and isinstance(head, str)):
        return None
    return (n, head, sig) if _SHA256.match(head) else None


def import_outbox(
    mailboxes: Mailboxes, org: Organization, path: Path, transparency_min: int = 5
) -> OutboxResult:
    """Verify an outbox bundle, then apply it in one transaction.

    The whole bundle is refused (nothing changes) when its signature, a hash,
    its numbers, or its base do not check. Past those checks, an item that
    cannot be applied (an invitation whose code clashes with a case's, a reply
    to a case no longer here, a malformed entry) is refused alone and reported
    back to the desk in the next inboxes; the rest is applied.
    """
    # The signature is checked before any item is read or hashed.
    with open_bundle(path, "outbox", verify=functools.partial(verify_signature, org)) as bundle:
        seq, base = _counters(bundle.manifest.extra)
        checkpoint = _checkpoint(bundle.manifest.extra)
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
        if base > last:
            raise BundleError(
                f"outbox {seq} was made after the desk heard that outbox {base} was applied "
                f"here, but the last outbox applied here is {last or 'none'}: import the "
                "missing outbox first, or make a new outbox on the desk after importing a "
                "fresh inbox there; nothing changed"
            )
        s.add(
            OutboxImport(
                seq=seq,
                sha256=digest,
                applied_on=today,
                custody_n=checkpoint[0] if checkpoint else None,
                custody_hash=checkpoint[1] if checkpoint else None,
                custody_sig=checkpoint[2] if checkpoint else None,
            )
        )
        # The desk has seen every refusal of the outboxes up to its base.
        s.execute(delete(RefusedItem).where(RefusedItem.outbox_seq <= base))
        counts, refusals = mailboxes.apply_desk_items(s, plan, today)
        if plan.figures is not None:
            figures.keep(s, plan.figures, transparency_min)
        refusals = [*plan.refused, *refusals]
        for r in refusals:
            s.merge(RefusedItem(id=r.id, outbox_seq=seq, kind=r.kind, reason=r.reason))
    refused = tuple(f"{r.kind} {r.id}: {r.reason}" for r in refusals)
    return OutboxResult(seq=seq, refused=refused, **counts)


def last_applied(mailboxes: Mailboxes) -> int:
    with mailboxes.db.reading() as s:
        return s.scalar(select(func.max(OutboxImport.seq))) or 0


def inbox_news(mailboxes: Mailboxes) -> dict[str, Any]:
    """What every inbox tells the desk about its outboxes: the newest applied, the
    items refused since the desk last looked, and the newest signed custody head."""
    with mailboxes.db.reading() as s:
        last = s.scalars(select(OutboxImport).order_by(OutboxImport.seq.desc())).first()
        refused = [
            {"id": r.id, "outbox": r.outbox_seq, "kind": r.kind, "reason": r.reason}
            for r in s.scalars(select(RefusedItem).order_by(RefusedItem.outbox_seq, RefusedItem.id))
        ]
        anchored = s.scalars(
            select(OutboxImport)
            .where(OutboxImport.custody_sig.is_not(None))
            .order_by(OutboxImport.seq.desc())
        ).first()
    news: dict[str, Any] = {"outbox_seq": last.seq if last else 0, "refused": refused}
    if anchored is not None:
        news["checkpoint"] = {
            "n": anchored.custody_n,
            "hash": anchored.custody_hash,
            "sig": b64encode(anchored.custody_sig or b""),
            "outbox": anchored.seq,
        }
    return news


def portal_checkpoints(mailboxes: Mailboxes) -> list[dict[str, Any]]:
    """Every signed custody head the desk's outboxes carried, oldest first."""
    with mailboxes.db.reading() as s:
        return [
            {
                "outbox": row.seq,
                "n": row.custody_n,
                "hash": row.custody_hash,
                "sig": b64encode(row.custody_sig or b""),
            }
            for row in s.scalars(
                select(OutboxImport)
                .where(OutboxImport.custody_sig.is_not(None))
                .order_by(OutboxImport.seq)
            )
        ]
