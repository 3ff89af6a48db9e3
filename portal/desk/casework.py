"""Staff's own work on cases: notes, tags, assignment, due dates, what each
person has seen, drafts, forms acted on once, and search.

None of it leaves the desk: no outbox carries it. Everything staff write here
is sealed to the desk's own public key before it is stored (``seal_own``), so
the desk's disk holds no more plaintext than before; search decrypts in memory
and keeps what it read only in the caller's ``TextCache``, which the web
interface drops when the desk locks.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
from nacl.public import PublicKey, SealedBox
from sqlalchemy import delete, func, select

from portal.common.errors import NamedError
from portal.common.languages import N_
from portal.desk.keystore import DeskKeys
from portal.desk.store import (
    CaseEvent,
    DeskStore,
    Draft,
    FormOnce,
    ReceivedEnvelope,
    SeenMark,
    utc_now,
)
from portal.protocol.organization import Organization

KINDS = ("note", "tags", "assign", "due")
MAX_NOTE = 20_000  # the limits are also spelled out in the messages below
MAX_TAG = 40
MAX_TAGS = 20
MAX_DRAFT = 40_000
PLACE = re.compile(r"\A(reply|note|tags|invite):[0-9a-f]{0,32}\Z")


class WorkRefused(NamedError, ValueError):
    """A note, tag, assignment or due date that cannot be kept as given."""

    REASON = "work_refused"


def seal_own(org: Organization, data: bytes) -> bytes:
    """Seal to the desk's own key: needs only the public half (works while locked)."""
    return bytes(SealedBox(PublicKey(org.encrypt[0].pk)).encrypt(data))


def open_own(keys: DeskKeys, sealed: bytes) -> bytes:
    for sk in keys.encrypt.values():
        try:
            return bytes(SealedBox(sk).decrypt(sealed))
        except nacl.exceptions.CryptoError:
            continue
    raise WorkRefused("a stored item cannot be opened with this desk's keys")


@dataclass(frozen=True)
class Note:
    at: dt.datetime
    by: str
    text: str


@dataclass(frozen=True)
class CaseWork:
    """The current state of staff's work on one case (newest event of each kind)."""

    tags: tuple[str, ...] = ()
    assignee: str | None = None
    due: dt.date | None = None
    notes: tuple[Note, ...] = ()
    last_at: dt.datetime | None = None


def clean_tags(raw: str | Iterable[str]) -> tuple[str, ...]:
    """Tags as kept: comma-separated or a list, trimmed, one line each, no repeats."""
    parts = raw.split(",") if isinstance(raw, str) else list(raw)
    out: list[str] = []
    for part in parts:
        tag = unicodedata.normalize("NFC", " ".join(part.split()))
        if not tag:
            continue
        if len(tag) > MAX_TAG or any(unicodedata.category(c).startswith("C") for c in tag):
            raise WorkRefused(N_("a tag must be one line of at most 40 characters"))
        if tag.casefold() not in {t.casefold() for t in out}:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise WorkRefused(N_("a case can have at most 20 tags"))
    return tuple(out)


def _checked(kind: str, value: Any, people: Iterable[str]) -> Any:
    if kind == "note":
        text = str(value).strip()
        if not text:
            raise WorkRefused(N_("a note cannot be empty"))
        if len(text) > MAX_NOTE:
            raise WorkRefused(N_("a note can be at most 20,000 characters"))
        return text
    if kind == "tags":
        return list(clean_tags(value))
    if kind == "assign":
        if not value:
            return None
        if value not in set(people):
            raise WorkRefused(N_("that is not a person on this desk"))
        return str(value)
    if kind == "due":
        if not value:
            return None
        try:
            return dt.date.fromisoformat(str(value)).isoformat()
        except ValueError as exc:
            raise WorkRefused(N_("a due date is a day, like 2026-12-31")) from exc
    raise WorkRefused(f"unknown kind of case work {kind!r}")


def record(
    store: DeskStore,
    keys: DeskKeys,
    case_id: str,
    kind: str,
    value: Any,
    people: Iterable[str] = (),
    nonce: str = "",
) -> int | None:
    """Keep one piece of case work (sealed), and log that it was done (not what).
    The same form sent again (its one-time ``nonce``) keeps nothing: None."""
    checked = _checked(kind, value, people)
    sealed = seal_own(keys.organization, json.dumps({"v": 1, kind: checked}).encode())
    with store.changing(), store.db.transaction() as s:
        if nonce and s.get(FormOnce, nonce[:64]) is not None:
            return None
        event = CaseEvent(case_id=case_id, kind=kind, by=keys.person, at=utc_now(), sealed=sealed)
        s.add(event)
        s.flush()
        event_id = event.id
        if nonce:
            s.add(FormOnce(nonce=nonce[:64], made=f"{kind}:{event_id}", at=utc_now()))
    store.custody.append(kind, keys.person, case=case_id, entry=event_id)
    return event_id


def work_of(store: DeskStore, keys: DeskKeys) -> dict[str, CaseWork]:
    """Every case's work, decrypted in memory, folded from oldest to newest event."""
    state: dict[str, dict[str, Any]] = {}
    with store.db.reading() as s:
        events = list(s.scalars(select(CaseEvent).order_by(CaseEvent.id)))
    for event in events:
        doc = json.loads(open_own(keys, event.sealed))
        value = doc.get(event.kind)
        case = state.setdefault(event.case_id, {"notes": []})
        case["last_at"] = event.at
        if event.kind == "note":
            case["notes"].append(Note(event.at, event.by, str(value)))
        elif event.kind == "tags":
            case["tags"] = tuple(value)
        elif event.kind == "assign":
            case["assignee"] = value
        elif event.kind == "due":
            case["due"] = dt.date.fromisoformat(value) if value else None
    return {
        c: CaseWork(
            tags=v.get("tags", ()),
            assignee=v.get("assignee"),
            due=v.get("due"),
            notes=tuple(v["notes"]),
            last_at=v.get("last_at"),
        )
        for c, v in state.items()
    }


# --- what is new for each person -------------------------------------------------


@dataclass(frozen=True)
class Unread:
    """What arrived in a case since a person last opened it."""

    new_case: bool  # they never opened it
    kinds: tuple[tuple[str, int], ...] = ()  # ("message", 2), ("answer", 1)…

    @property
    def count(self) -> int:
        return sum(n for _, n in self.kinds)


def unread(store: DeskStore, person: str) -> dict[str, Unread]:
    """Per case, what ``person`` has not seen; cases with nothing new are left out.
    Envelopes kept before arrival numbers existed count as seen."""
    with store.db.reading() as s:
        marks = {
            m.case_id: m.upto for m in s.scalars(select(SeenMark).where(SeenMark.person == person))
        }
        rows = s.execute(
            select(
                ReceivedEnvelope.mailbox_id, ReceivedEnvelope.kind, ReceivedEnvelope.arrival
            ).where(ReceivedEnvelope.arrival.is_not(None))
        ).all()
    counts: dict[str, dict[str, int]] = {}
    for case_id, kind, arrival in rows:
        if arrival is not None and arrival > marks.get(case_id, 0):
            per = counts.setdefault(case_id, {})
            per[kind] = per.get(kind, 0) + 1
    return {
        c: Unread(new_case=c not in marks, kinds=tuple(sorted(k.items())))
        for c, k in counts.items()
    }


def mark_seen(store: DeskStore, person: str, case_id: str) -> None:
    """``person`` has now seen everything that has arrived in the case."""
    with store.db.transaction() as s:
        upto = (
            s.scalar(
                select(func.max(ReceivedEnvelope.arrival)).where(
                    ReceivedEnvelope.mailbox_id == case_id
                )
            )
            or 0
        )
        mark = s.get(SeenMark, (person, case_id))
        if mark is None:
            s.add(SeenMark(person=person, case_id=case_id, upto=upto))
        else:
            mark.upto = max(mark.upto, upto)


# --- drafts and forms acted on once ------------------------------------------------


@dataclass(frozen=True)
class Kept:
    """A form's words kept while the desk was locked, and its other choices
    (a reply's status, an invitation's language)."""

    text: str
    choices: dict[str, str] = field(default_factory=dict)


def save_draft(
    store: DeskStore,
    org: Organization,
    person: str,
    place: str,
    text: str,
    choices: dict[str, str] | None = None,
) -> None:
    """Keep what ``person`` was writing, sealed with the public key (no unlock needed)."""
    if not PLACE.match(place):
        raise WorkRefused(f"no such place for a draft: {place!r}")
    if not text.strip():
        drop_draft(store, person, place)
        return
    doc = {
        "text": text[:MAX_DRAFT],
        "choices": {k[:40]: v[:200] for k, v in (choices or {}).items()},
    }
    sealed = seal_own(org, json.dumps(doc).encode())
    with store.db.transaction() as s:
        row = s.get(Draft, (person, place))
        if row is None:
            s.add(Draft(person=person, place=place, at=utc_now(), sealed=sealed))
        else:
            row.sealed, row.at = sealed, utc_now()


def drafts(store: DeskStore, keys: DeskKeys) -> dict[str, Kept]:
    """The unlocked person's drafts, by place, decrypted in memory."""
    with store.db.reading() as s:
        rows = list(s.scalars(select(Draft).where(Draft.person == keys.person)))
    out = {}
    for r in rows:
        doc = json.loads(open_own(keys, r.sealed))
        out[r.place] = Kept(str(doc["text"]), {str(k): str(v) for k, v in doc["choices"].items()})
    return out


def drop_draft(store: DeskStore, person: str, place: str) -> None:
    with store.db.transaction() as s:
        s.execute(delete(Draft).where(Draft.person == person, Draft.place == place))


def remember(store: DeskStore, nonce: str, made: str) -> None:
    """This form (its one-time field) has now been acted on."""
    if nonce:
        with store.db.transaction() as s:
            s.merge(FormOnce(nonce=nonce[:64], made=made, at=utc_now()))


def forget_person(store: DeskStore, person: str) -> None:
    """A removed person's drafts and marks go with them."""
    with store.db.transaction() as s:
        s.execute(delete(Draft).where(Draft.person == person))
        s.execute(delete(SeenMark).where(SeenMark.person == person))


def already_made(store: DeskStore, nonce: str) -> str | None:
    """What a form with this one-time field already made, if it was acted on."""
    if not nonce:
        return None
    with store.db.reading() as s:
        row = s.get(FormOnce, nonce[:64])
        return None if row is None else row.made


# --- search ---------------------------------------------------------------------


@dataclass
class TextCache:
    """Decrypted text by what it came from (an envelope's SHA-256, a reply's id…),
    in memory only; ``clear`` when the keys are dropped."""

    texts: dict[str, str] = field(default_factory=dict)

    def clear(self) -> None:
        self.texts.clear()


@dataclass(frozen=True)
class Hit:
    case: str
    where: str  # report, message, answer, reply, note
    snippet: str


def words(query: str) -> list[str]:
    return [w.casefold() for w in query.split() if w.strip()][:10]


def snippet(text: str, needle: str, width: int = 60) -> str:
    """The text around the first place ``needle`` occurs (case-insensitively)."""
    flat = " ".join(text.split())
    at = flat.casefold().find(needle)
    if at < 0:
        return flat[: width * 2]
    start = max(0, at - width)
    end = min(len(flat), at + len(needle) + width)
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")


def matches(sources: Iterable[tuple[str, str, str]], query: str) -> list[Hit]:
    """The cases whose texts, taken together, hold every word of the query (one in
    the report, another in a follow-up), with one hit per (case, where) that holds
    any of them, its snippet around the first word it holds."""
    wanted = words(query)
    if not wanted:
        return []
    by_case: dict[str, list[tuple[str, str]]] = {}
    for case, where, text in sources:
        by_case.setdefault(case, []).append((where, text))
    hits: list[Hit] = []
    for case, texts in by_case.items():
        whole = " ".join(text for _, text in texts).casefold()
        if not all(w in whole for w in wanted):
            continue
        seen: set[str] = set()
        for where, text in texts:
            folded = text.casefold()
            found = next((w for w in wanted if w in folded), None)
            if found is not None and where not in seen:
                seen.add(where)
                hits.append(Hit(case, where, snippet(text, found)))
    return hits
