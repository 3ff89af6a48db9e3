"""Cases on the desk: listing them and reading one (importing is inbox.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from portal.common.errors import NamedError
from portal.desk import evidence as files
from portal.desk.binding import CaseKey, Opened, Unbound, open_bound
from portal.desk.inbox import ImportResult, import_inbox
from portal.desk.keystore import DeskKeys
from portal.desk.replies import read_own_copy
from portal.desk.store import DeskStore, ReceivedEnvelope

__all__ = [
    "CaseError",
    "CaseSummary",
    "CaseView",
    "ImportResult",
    "ShownEnvelope",
    "ShownReply",
    "as_json",
    "import_inbox",
    "list_cases",
    "resolve",
    "select_cases",
    "show_case",
]


class CaseError(NamedError, LookupError):
    """No such case, or a case id prefix that names several."""

    REASON = "no_case"


@dataclass(frozen=True)
class CaseSummary:
    """A case in the list: what the desk knows without decrypting anything."""

    case: str
    witness: bool
    received: str  # the first day anything of it arrived (ISO date)
    last: str  # the latest such day
    envelopes: int
    replies: int
    kinds: tuple[str, ...]
    status: str = "received"  # the latest status the desk gave it


@dataclass(frozen=True)
class ShownEnvelope:
    """One envelope of a case as read now: its content, or why it cannot be read."""

    id: str
    kind: str
    sealed_by: str  # the portal's word ("browser" or "server"), "?" when held aside
    day: str
    damaged: str | None  # why it cannot be read, or None
    content: dict[str, Any]  # the decrypted document (empty when damaged)
    files: list[dict[str, Any]]  # each file's public view and its state now
    held: bool  # kept aside at import, never acknowledged
    sha256: str | None = None


@dataclass(frozen=True)
class ShownReply:
    """One item the desk sent the case, from the desk's own copy."""

    seq: int
    day: str
    type: str
    status: str | None
    text: str
    delivered: bool


@dataclass(frozen=True)
class CaseView:
    """A case read in full, in memory."""

    case: str
    witness: bool
    status: str
    items: list[ShownEnvelope]
    replies: list[ShownReply]


def as_json(result: CaseSummary | CaseView) -> dict[str, Any]:
    """A result as the JSON the CLI prints (``--json``)."""
    return asdict(result)


def resolve(store: DeskStore, case: str) -> str:
    """A full case id from an id or a unique prefix of one."""
    matches = [c for c in store.case_ids() if c.startswith(case)] if case else []
    if len(matches) != 1:
        raise CaseError(f"no case {case!r}" if not matches else f"{case!r} names several cases")
    return matches[0]


def list_cases(store: DeskStore, statuses: Mapping[str, str] | None = None) -> list[CaseSummary]:
    """One summary per case, oldest first; no decryption needed. ``statuses``
    (from ``current_statuses``, which does decrypt) fills in each case's status."""
    out = []
    for case_id in store.case_ids():
        rows = store.envelopes(case_id)
        invitation = store.invitation(case_id)
        days = [r.received_on for r in rows] + ([invitation.created_on] if invitation else [])
        out.append(
            CaseSummary(
                case=case_id,
                witness=invitation is not None,
                received=min(days).isoformat(),
                last=max(days).isoformat(),
                envelopes=len(rows),
                replies=len(store.replies(case_id)),
                kinds=tuple(sorted({r.kind for r in rows})),
                status=(statuses or {}).get(case_id, "received"),
            )
        )
    return out


FILTERS = ("all", "new", "witness")  # and any status


def select_cases(rows: list[CaseSummary], show: str) -> list[CaseSummary]:
    """The cases a list filter keeps: all, new (never answered), witness cases, or
    those whose latest status is ``show``."""
    if show == "new":
        return [r for r in rows if r.replies == 0]
    if show == "witness":
        return [r for r in rows if r.witness]
    if show in FILTERS:
        return rows
    return [r for r in rows if r.status == show]


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


def show_case(store: DeskStore, keys: DeskKeys, case: str) -> CaseView:
    """Decrypt every envelope of a case, in memory. An item that no longer opens
    (its stored copy was damaged) is shown as damaged; it never hides the case."""
    case_id = resolve(store, case)
    items: list[ShownEnvelope] = []
    for row in store.envelopes(case_id):
        shown = ShownEnvelope(
            id=row.id,
            kind=row.kind,
            sealed_by=row.sealed_by,
            day=row.received_on.isoformat(),
            damaged=None,
            content={},
            files=[],
            held=False,
        )
        try:
            opened = open_item(store, keys, row)
        except (Unbound, OSError) as exc:
            items.append(replace(shown, damaged=str(exc)))
            continue
        files_shown = [files.public(f, files.check(store, f)) for f in opened.files]
        items.append(replace(shown, content=opened.content, files=files_shown))
    for held in store.damaged(case_id):
        items.append(
            ShownEnvelope(
                id=held.id,
                sha256=held.sha256,
                kind=held.kind,
                sealed_by="?",
                day=held.first_seen.isoformat(),
                damaged=f"kept aside, not acknowledged: {held.reason}"
                + (" (discarded)" if held.discarded else ""),
                content={},
                files=[],
                held=True,
            )
        )
    replies = [
        ShownReply(
            seq=item.seq,
            day=item.date,
            type=item.type,
            status=item.status,
            text=item.text,
            delivered=row.confirmed,
        )
        for row in store.replies(case_id)
        for item in [read_own_copy(keys, row.for_desk)]
    ]
    store.custody.append(
        "view",
        case=case_id,
        envelopes=[{"id": row.id, "sha256": row.sha256} for row in store.envelopes(case_id)],
    )
    statuses = [r.status for r in replies if r.status]
    return CaseView(
        case=case_id,
        witness=store.invitation(case_id) is not None,
        status=statuses[-1] if statuses else "received",
        items=items,
        replies=replies,
    )


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
