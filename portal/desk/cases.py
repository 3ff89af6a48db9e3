"""Cases on the desk: importing inbox bundles, listing cases, reading one."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bundles import BundleError, open_bundle
from ..envelopes import open_envelope
from ..files import atomic_writer
from ..mailboxes import envelope_blob, utc_today
from ..uploads import attachment_blob
from . import files
from .keystore import DeskKeys
from .outbox import confirm_applied
from .replies import read_own_copy
from .store import DeskStore, ReceivedAttachment, ReceivedEnvelope


class CaseError(LookupError):
    """No such case, or a case id prefix that names several."""


@dataclass(frozen=True)
class ImportResult:
    new: int
    already: int
    files: int = 0


def import_inbox(store: DeskStore, keys: DeskKeys, path: Path) -> ImportResult:
    """Check a whole inbox bundle, then keep its new envelopes and files (still encrypted)."""
    own = {r.kid for r in keys.organization.encrypt}
    with open_bundle(path, "inbox") as bundle:
        if bundle.manifest.org not in own:
            raise BundleError("this bundle was made by a portal for another organization's keys")
        outbox_seq = bundle.manifest.extra.get("outbox_seq", 0)
        if not isinstance(outbox_seq, int) or outbox_seq < 0:
            raise BundleError("the inbox's outbox number is malformed")
        fresh, files = [], []
        for item in bundle.manifest.items:
            if item.kind == "blob":
                if store.attachment(item.id) is None:
                    files.append(item)
                continue
            if item.kind != "envelope":
                raise BundleError(f"unknown item kind {item.kind!r}")
            if store.has_envelope(item.id):
                continue
            document = bundle.read(item)
            try:
                doc = json.loads(document)
                kids = {r["kid"] for r in doc["recipients"]}
            except (ValueError, KeyError, TypeError) as exc:
                raise BundleError(f"envelope {item.id} is malformed") from exc
            if not own & kids:
                raise BundleError(f"envelope {item.id} is not sealed to this desk's keys")
            fresh.append((item, document, doc))
        for item, document, _doc in fresh:
            store.blobs.put(envelope_blob(item.id), document)
        for item in files:  # streamed: a 1 GiB file never sits in memory
            with atomic_writer(store.blobs.path(attachment_blob(item.id))) as out:
                for chunk in bundle.stream(item):
                    out.write(chunk)
        today = utc_today()
        with store.db.transaction() as s:
            for item, _document, doc in fresh:
                s.add(
                    ReceivedEnvelope(
                        id=item.id,
                        mailbox_id=str(item.meta["mailbox"]),
                        kind=str(doc["kind"]),
                        sealed_by=str(doc["sealed_by"]),
                        size=item.size,
                        sha256=item.sha256,
                        received_on=dt.date.fromisoformat(str(item.meta["day"])),
                        imported_on=today,
                        seq=int(item.meta.get("seq", 1)),
                    )
                )
            for item in files:
                s.add(
                    ReceivedAttachment(
                        id=item.id,
                        mailbox_id=str(item.meta["mailbox"]),
                        size=item.size,
                        sha256=item.sha256,
                        imported_on=today,
                    )
                )
        confirm_applied(store, outbox_seq)
        total = len(bundle.manifest.items)
        store.custody.append(
            "import",
            bundle_sha256=_file_sha256(path),
            new=[{"id": i.id, "sha256": i.sha256} for i, _d, _doc in fresh]
            + [{"id": i.id, "sha256": i.sha256} for i in files],
            already=total - len(fresh) - len(files),
        )
        envelopes = sum(1 for i in bundle.manifest.items if i.kind == "envelope")
        return ImportResult(new=len(fresh), already=envelopes - len(fresh), files=len(files))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def resolve(store: DeskStore, case: str) -> str:
    """A full case id from an id or a unique prefix of one."""
    matches = [c for c in store.case_ids() if c.startswith(case)] if case else []
    if len(matches) != 1:
        raise CaseError(f"no case {case!r}" if not matches else f"{case!r} names several cases")
    return matches[0]


def list_cases(store: DeskStore) -> list[dict[str, Any]]:
    """One summary per case, oldest first; no decryption needed."""
    out = []
    for case_id in store.case_ids():
        rows = store.envelopes(case_id)
        invitation = store.invitation(case_id)
        days = [r.received_on for r in rows] + ([invitation.created_on] if invitation else [])
        out.append(
            {
                "case": case_id,
                "witness": invitation is not None,
                "received": min(days).isoformat(),
                "last": max(days).isoformat(),
                "envelopes": len(rows),
                "replies": len(store.replies(case_id)),
                "kinds": sorted({r.kind for r in rows}),
            }
        )
    return out


def current_statuses(store: DeskStore, keys: DeskKeys) -> dict[str, str]:
    """Each case's latest status, read from the desk's own reply copies."""
    out: dict[str, str] = {}
    for case_id in store.case_ids():
        for row in store.replies(case_id):
            item = read_own_copy(keys, row.for_desk)
            if item.status:
                out[case_id] = item.status
    return out


def show_case(store: DeskStore, keys: DeskKeys, case: str) -> dict[str, Any]:
    """Decrypt every envelope of a case, in memory."""
    case_id = resolve(store, case)
    items = []
    for row in store.envelopes(case_id):
        plaintext = open_envelope(store.blobs.read(envelope_blob(row.id)), keys.encrypt)
        content = json.loads(plaintext)
        items.append(
            {
                "id": row.id,
                "kind": row.kind,
                "sealed_by": row.sealed_by,
                "day": row.received_on.isoformat(),
                "content": content,
                "files": [f.public(files.check(store, f)) for f in files.files_of(content)],
            }
        )
    replies = [
        {
            "seq": item.seq,
            "day": item.date,
            "type": item.type,
            "status": item.status,
            "text": item.text,
            "delivered": row.confirmed,
        }
        for row in store.replies(case_id)
        for item in [read_own_copy(keys, row.for_desk)]
    ]
    store.custody.append(
        "view",
        case=case_id,
        envelopes=[{"id": row.id, "sha256": row.sha256} for row in store.envelopes(case_id)],
    )
    statuses = [r["status"] for r in replies if r["status"]]
    return {
        "case": case_id,
        "witness": store.invitation(case_id) is not None,
        "status": statuses[-1] if statuses else "received",
        "items": items,
        "replies": replies,
    }


def case_file(store: DeskStore, keys: DeskKeys, case_id: str, upload: str) -> files.CaseFile:
    """One file of a case, found in the envelope that describes it."""
    for row in store.envelopes(resolve(store, case_id)):
        content = json.loads(open_envelope(store.blobs.read(envelope_blob(row.id)), keys.encrypt))
        for f in files.files_of(content):
            if f.upload == upload:
                return f
    raise CaseError(f"no file {upload!r} in case {case_id!r}")
