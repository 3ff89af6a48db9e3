"""Cases on the desk: listing them and reading one (importing is inbox.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import files
from .binding import CaseKey, Opened, Unbound, open_bound
from .inbox import ImportResult, import_inbox
from .keystore import DeskKeys
from .replies import read_own_copy
from .store import DeskStore, ReceivedEnvelope

__all__ = ["CaseError", "ImportResult", "import_inbox", "list_cases", "resolve", "show_case"]


class CaseError(LookupError):
    """No such case, or a case id prefix that names several."""


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


def known_cases(store: DeskStore) -> Callable[[str], CaseKey | None]:
    def known(case: str) -> CaseKey | None:
        row = store.case(case)
        return None if row is None else CaseKey(row.reporter_pk, row.kind)

    return known


def open_item(store: DeskStore, keys: DeskKeys, row: ReceivedEnvelope) -> Opened:
    """Open a kept envelope again (it was bound to its case when imported)."""
    document = store.blobs.read(f"envelopes/{row.sha256}")
    return open_bound(document, keys, row.mailbox_id, known_cases(store))


def show_case(store: DeskStore, keys: DeskKeys, case: str) -> dict[str, Any]:
    """Decrypt every envelope of a case, in memory. An item that no longer opens
    (its stored copy was damaged) is shown as damaged; it never hides the case."""
    case_id = resolve(store, case)
    items = []
    for row in store.envelopes(case_id):
        shown: dict[str, Any] = {
            "id": row.id,
            "kind": row.kind,
            "sealed_by": row.sealed_by,
            "day": row.received_on.isoformat(),
        }
        try:
            opened = open_item(store, keys, row)
        except (Unbound, OSError) as exc:
            items.append({**shown, "damaged": str(exc), "content": {}, "files": [], "held": False})
            continue
        files_shown = [f.public(files.check(store, f)) for f in opened.files]
        items.append(
            {
                **shown,
                "damaged": None,
                "content": opened.content,
                "files": files_shown,
                "held": False,
            }
        )
    for held in store.damaged(case_id):
        items.append(
            {
                "id": held.id,
                "sha256": held.sha256,
                "kind": held.kind,
                "sealed_by": "?",
                "day": held.first_seen.isoformat(),
                "damaged": f"kept aside, not acknowledged: {held.reason}"
                + (" (discarded)" if held.discarded else ""),
                "content": {},
                "files": [],
                "held": True,
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
        try:
            opened = open_item(store, keys, row)
        except (Unbound, OSError):
            continue
        for f in opened.files:
            if f.upload == upload:
                return f
    raise CaseError(f"no file {upload!r} in case {case_id!r}")
