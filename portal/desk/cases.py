"""Cases on the desk: listing them and reading one (importing is inbox.py).

A case is named for people by ``names.case_name`` and resolved from that name,
its id or a prefix of the id. Lists are sorted by last activity, newest first,
with the desk's own time of day; what is new is per person (casework.unread).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import func, select

from portal.common.errors import NamedError
from portal.common.languages import LANGUAGES
from portal.desk import casework, stats
from portal.desk import evidence as files
from portal.desk.binding import CaseKey, Opened, Unbound, open_bound
from portal.desk.inbox import ImportResult, import_inbox
from portal.desk.keystore import DeskKeys
from portal.desk.names import case_name
from portal.desk.replies import read_own_copy
from portal.desk.store import (
    DeskStore,
    ExpectedFile,
    ReceivedEnvelope,
    SeenMark,
    WitnessInvitation,
)
from portal.protocol.replies import STATUS_LABELS

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


def when(at: dt.datetime | None) -> str:
    """A desk time as shown: "2026-11-27 23:49 UTC" ("" for none)."""
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class CaseSummary:
    """A case in the list. Its status and staff's work need the keys (decryption);
    ``unread`` and ``new`` are for the person who asked."""

    case: str
    witness: bool
    received: str  # the first day anything of it arrived (ISO date)
    last: str  # the latest such day
    envelopes: int
    replies: int
    kinds: tuple[str, ...]
    status: str = "received"  # the latest status the desk gave it
    name: str = ""  # the case's pronounceable name
    last_at: str = ""  # last activity on the desk, with time of day (UTC)
    files: int = 0  # evidence files its envelopes describe
    new: bool = False  # the asking person never opened it
    unread: tuple[tuple[str, int], ...] = ()  # what arrived since they last did, by kind
    tags: tuple[str, ...] = ()
    assignee: str | None = None
    due: str | None = None  # ISO day a reply is due
    concerns: str | None = None  # for a witness case: the case it is about

    @property
    def unread_count(self) -> int:
        return sum(n for _, n in self.unread)

    @property
    def overdue(self) -> bool:
        return self.due is not None and self.due < dt.datetime.now(dt.UTC).date().isoformat()


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
    at: str = ""  # when the desk kept it (time of day, UTC)
    new: bool = False  # arrived since the reading person last opened the case
    lang: str = ""  # the language of the sender's pages, as their item says


@dataclass(frozen=True)
class ShownReply:
    """One item the desk sent the case, from the desk's own copy."""

    seq: int
    day: str
    type: str
    status: str | None
    text: str
    delivered: bool
    by: str = ""  # the person who wrote it
    at: str = ""


@dataclass(frozen=True)
class CaseView:
    """A case read in full, in memory."""

    case: str
    witness: bool
    status: str
    items: list[ShownEnvelope]
    replies: list[ShownReply]
    name: str = ""
    work: casework.CaseWork = field(default_factory=casework.CaseWork)
    concerns: str | None = None  # for a witness case: the case it is about
    witnesses: tuple[str, ...] = ()  # witness cases made about this one


def as_json(result: CaseSummary | CaseView) -> dict[str, Any]:
    """A result as the JSON the CLI prints (``--json``): times and days as ISO text."""

    def plain(value: Any) -> Any:
        if isinstance(value, dt.date | dt.datetime):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    out: dict[str, Any] = plain(asdict(result))
    return out


def resolve(store: DeskStore, case: str) -> str:
    """A full case id from its name, its id or a unique prefix of the id."""
    wanted = case.strip().lower()
    matches = (
        [c for c in store.case_ids() if c.startswith(wanted) or case_name(c) == wanted]
        if wanted
        else []
    )
    if len(matches) != 1:
        raise CaseError(f"no case {case!r}" if not matches else f"{case!r} names several cases")
    return matches[0]


def _file_counts(store: DeskStore) -> dict[str, int]:
    with store.db.reading() as s:
        rows = s.execute(
            select(
                ExpectedFile.case_id, func.count(func.distinct(ExpectedFile.upload_id))
            ).group_by(ExpectedFile.case_id)
        )
        return {str(case): int(n) for case, n in rows}


def _witnesses(store: DeskStore) -> dict[str, list[str]]:
    """Witness cases by the case they concern."""
    out: dict[str, list[str]] = {}
    with store.db.reading() as s:
        for inv in s.scalars(
            select(WitnessInvitation).where(WitnessInvitation.concerns.is_not(None))
        ):
            out.setdefault(str(inv.concerns), []).append(inv.mailbox_id)
    return out


def _day_time(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day)


def list_cases(store: DeskStore, keys: DeskKeys | None = None) -> list[CaseSummary]:
    """One summary per case: what is new to ``keys.person`` first, then the most
    recent activity first. Without ``keys`` it
    decrypts nothing (every status reads "received"); with them it adds statuses,
    tags, assignment and due dates, and what is new for ``keys.person``."""
    statuses = current_statuses(store, keys) if keys else {}
    work = casework.work_of(store, keys) if keys else {}
    fresh = casework.unread(store, keys.person) if keys else {}
    file_counts = _file_counts(store)
    out: list[tuple[dt.datetime, CaseSummary]] = []
    for case_id in store.case_ids():
        rows = store.envelopes(case_id)
        invitation = store.invitation(case_id)
        sent = store.replies(case_id)
        days = [r.received_on for r in rows] + ([invitation.created_on] if invitation else [])
        moments = [r.imported_at or _day_time(r.imported_on) for r in rows]
        moments += [r.written_at or _day_time(r.written_on) for r in sent]
        if invitation is not None:
            moments.append(invitation.created_at or _day_time(invitation.created_on))
        w = work.get(case_id, casework.CaseWork())
        if w.last_at is not None:
            moments.append(w.last_at)
        last_at = max(moments)
        unread = fresh.get(case_id)
        out.append(
            (
                last_at,
                CaseSummary(
                    case=case_id,
                    witness=invitation is not None,
                    received=min(days).isoformat(),
                    last=max(days).isoformat(),
                    envelopes=len(rows),
                    replies=len(sent),
                    kinds=tuple(sorted({r.kind for r in rows})),
                    status=statuses.get(case_id, "received"),
                    name=case_name(case_id),
                    last_at=when(last_at),
                    files=file_counts.get(case_id, 0),
                    new=unread is not None and unread.new_case,
                    unread=unread.kinds if unread else (),
                    tags=w.tags,
                    assignee=w.assignee,
                    due=w.due.isoformat() if w.due else None,
                    concerns=invitation.concerns if invitation else None,
                ),
            )
        )
    # What is new to the person comes first, then the most recent activity.
    out.sort(
        key=lambda pair: (pair[1].new or pair[1].unread_count > 0, pair[0], pair[1].case),
        reverse=True,
    )
    return [summary for _, summary in out]


FILTERS = ("all", "unread", "unanswered", "witness", "mine", "overdue")  # and any status


@dataclass(frozen=True)
class Selection:
    """What a list shows: one of FILTERS or a status, and optionally a tag, a
    person it is assigned to, and cases due on or before a day."""

    show: str = "all"
    tag: str = ""
    assignee: str = ""
    due_by: str = ""

    def keeps(self, r: CaseSummary, me: str) -> bool:
        show = self.show
        kept = (
            (show == "unread" and (r.new or r.unread_count > 0))
            or (show == "unanswered" and r.replies == 0)
            or (show == "witness" and r.witness)
            or (show == "mine" and r.assignee == me)
            or (show == "overdue" and r.overdue)
            or show == "all"
            or (show in STATUS_LABELS and r.status == show)
        )
        if self.tag and self.tag.casefold() not in {t.casefold() for t in r.tags}:
            return False
        if self.assignee and r.assignee != self.assignee:
            return False
        if self.due_by and (r.due is None or r.due > self.due_by):
            return False
        return kept


def select_cases(rows: list[CaseSummary], show: str | Selection, me: str = "") -> list[CaseSummary]:
    """The cases a list filter keeps (see Selection)."""
    chosen = show if isinstance(show, Selection) else Selection(show=show)
    return [r for r in rows if chosen.keeps(r, me)]


def current_statuses(store: DeskStore, keys: DeskKeys | None) -> dict[str, str]:
    """Each case's latest status, read from the desk's own reply copies."""
    out: dict[str, str] = {}
    if keys is None:
        return out
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


def show_case(store: DeskStore, keys: DeskKeys, case: str, *, mark: bool = True) -> CaseView:
    """Decrypt every envelope of a case, in memory. An item that no longer opens
    (its stored copy was damaged) is shown as damaged; it never hides the case.
    Items new to ``keys.person`` are marked so; with ``mark`` they are then seen."""
    case_id = resolve(store, case)
    fresh = casework.unread(store, keys.person).get(case_id)
    with store.db.reading() as s:
        seen = s.get(SeenMark, (keys.person, case_id))
    upto = seen.upto if seen is not None else 0
    items: list[ShownEnvelope] = []
    for index, row in enumerate(store.envelopes(case_id), start=1):
        shown = ShownEnvelope(
            id=row.id,
            kind=row.kind,
            sealed_by=row.sealed_by,
            day=row.received_on.isoformat(),
            damaged=None,
            content={},
            files=[],
            held=False,
            at=when(row.imported_at),
            new=fresh is not None and row.arrival is not None and row.arrival > upto,
        )
        try:
            opened = open_item(store, keys, row)
        except (Unbound, OSError) as exc:
            items.append(replace(shown, damaged=str(exc)))
            continue
        files_shown = []
        for f in opened.files:
            f = replace(f, item=index)
            checked = files.check(store, f)
            files_shown.append(files.public(f, checked, files.location_flag(store, f, checked)))
        lang = opened.content.get("lang")
        items.append(
            replace(
                shown,
                content=opened.content,
                files=files_shown,
                lang=lang if isinstance(lang, str) and lang in LANGUAGES else "",
            )
        )
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
            by=row.by or "",
            at=when(row.written_at),
        )
        for row in store.replies(case_id)
        for item in [read_own_copy(keys, row.for_desk)]
    ]
    store.custody.append(
        "view",
        keys.person,
        case=case_id,
        envelopes=[{"id": row.id, "sha256": row.sha256} for row in store.envelopes(case_id)],
    )
    if mark:
        casework.mark_seen(store, keys.person, case_id)
    statuses = [r.status for r in replies if r.status]
    invitation = store.invitation(case_id)
    return CaseView(
        case=case_id,
        witness=invitation is not None,
        status=statuses[-1] if statuses else "received",
        items=items,
        replies=replies,
        name=case_name(case_id),
        work=casework.work_of(store, keys).get(case_id, casework.CaseWork()),
        concerns=invitation.concerns if invitation else None,
        witnesses=tuple(_witnesses(store).get(case_id, [])),
    )


def case_file(store: DeskStore, keys: DeskKeys, case_id: str, upload: str) -> files.CaseFile:
    """One file of a case, found in the envelope that describes it."""
    for index, row in enumerate(store.envelopes(resolve(store, case_id)), start=1):
        try:
            opened = open_item(store, keys, row)
        except (Unbound, OSError):
            continue
        for f in opened.files:
            if f.upload == upload:
                return replace(f, item=index)
    raise CaseError(f"no file {upload!r} in case {case_id!r}")


def arrivals_by_case(store: DeskStore, result: ImportResult) -> dict[str, Any]:
    """An import's result for people: what arrived, case by case, with names."""
    per: dict[str, dict[str, int]] = {}
    for a in result.arrivals:
        kinds = per.setdefault(a.case, {})
        kinds[a.kind] = kinds.get(a.kind, 0) + 1
    return {
        "new": result.new,
        "files": result.files,
        "already": result.already,
        "damaged": result.damaged,
        "notes": list(result.notes),
        "cases": [
            {
                "case": case,
                "name": case_name(case),
                "witness": store.invitation(case) is not None,
                "kinds": sorted(kinds.items()),
            }
            for case, kinds in per.items()
        ],
    }


def _sources(
    store: DeskStore, keys: DeskKeys, cache: casework.TextCache
) -> list[tuple[str, str, str]]:
    """Every text of every case, decrypted in memory (or from ``cache``)."""
    out: list[tuple[str, str, str]] = []
    for row in store.envelopes():
        key = f"env:{row.sha256}"
        if key not in cache.texts:
            try:
                content = open_item(store, keys, row).content
            except (Unbound, OSError):
                continue
            fields = content.get("fields", {})
            names = " ".join(str(f.get("name", "")) for f in content.get("attachments") or [])
            cache.texts[key] = "\n".join(str(v) for v in fields.values() if v) + " " + names
        out.append((row.mailbox_id, row.kind, cache.texts[key]))
    for case_id in store.case_ids():
        for reply in store.replies(case_id):
            key = f"reply:{reply.id}"
            if key not in cache.texts:
                cache.texts[key] = read_own_copy(keys, reply.for_desk).text
            out.append((case_id, "reply", cache.texts[key]))
    for case_id, work in casework.work_of(store, keys).items():
        for note in work.notes:
            out.append((case_id, "note", note.text))
        if work.tags:
            out.append((case_id, "tags", " ".join(work.tags)))
    return out


def search(
    store: DeskStore, keys: DeskKeys, query: str, cache: casework.TextCache | None = None
) -> list[casework.Hit]:
    """Cases whose reports, follow-ups, answers, replies, notes or tags hold every
    word of ``query`` (case-insensitively), decrypted in memory. The search is
    logged (which cases matched), never its words."""
    hits = casework.matches(_sources(store, keys, cache or casework.TextCache()), query)
    store.custody.append("search", keys.person, matched=sorted({h.case for h in hits}))
    return hits


def case_facts(store: DeskStore, keys: DeskKeys) -> list[stats.CaseFacts]:
    """What the statistics need of each case, from the desk's own records."""
    work = casework.work_of(store, keys)
    out = []
    for summary in list_cases(store):
        case_id = summary.case
        rows = store.envelopes(case_id)
        invitation = store.invitation(case_id)
        moments = [r.imported_at or _day_time(r.imported_on) for r in rows]
        if invitation is not None:
            moments.append(invitation.created_at or _day_time(invitation.created_on))
        first_reply = None
        closed = None
        referred = False
        status = "received"
        for reply in store.replies(case_id):
            item = read_own_copy(keys, reply.for_desk)
            at = reply.written_at or _day_time(reply.written_on)
            if item.type == "reply" and first_reply is None:
                first_reply = at
            if item.status:
                status = item.status
                referred = referred or item.status == "legal_aid"
                if item.status == "closed" and closed is None:
                    closed = at
        out.append(
            stats.CaseFacts(
                case=summary.name,
                opened=min(moments).replace(tzinfo=dt.UTC),
                kind="witness" if invitation is not None else "report",
                status=status,
                tags=work.get(case_id, casework.CaseWork()).tags,
                first_reply=first_reply.replace(tzinfo=dt.UTC) if first_reply else None,
                closed=closed.replace(tzinfo=dt.UTC) if closed else None,
                referred=referred,
            )
        )
    return out
