"""Importing an inbox bundle on the desk: keep only what proves itself.

1. The bundle's structure and every item's hash (bundles.open_bundle), or
   nothing is imported.
2. Every new envelope is opened and bound to its case (binding.py); every new
   file is decrypted and checked against the hash its own envelope sealed.
   What passes is kept, still encrypted, and will be acknowledged in the next
   outbox. What fails is kept aside as damaged (``blobs/quarantine/``) and is
   never acknowledged, so the portal keeps sending it until a good copy
   arrives, or until staff discard it.
3. The inbox's own fields are the portal's unsigned word: each is bounded, and
   none can make the desk stop resending a reply the portal has not applied
   (docs/protocol.md, "Counters").

All of it is written in one transaction, after every check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.exceptions
from nacl.signing import VerifyKey
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from portal.common.atomic import atomic_writer, fsync_dir
from portal.desk import layout
from portal.desk.binding import CaseKey, Opened, Unbound, open_bound
from portal.desk.custody import checkpoint_message
from portal.desk.evidence import CaseFile
from portal.desk.keystore import DeskKeys
from portal.desk.store import (
    AckAlias,
    Checkpoint,
    DamagedItem,
    DeskCase,
    DeskState,
    DeskStore,
    ExpectedFile,
    OutboxRefusal,
    ReceivedAttachment,
    ReceivedEnvelope,
    SentReply,
    WitnessInvitation,
    utc_now,
    utc_today,
)
from portal.protocol.bundles import Bundle, BundleError, Item, open_bundle
from portal.protocol.encoding import EncodingError, b64decode
from portal.protocol.filecrypt import DamagedFile, verify

MAX_QUESTIONNAIRE_BYTES = 1024 * 1024
HEX_ID = re.compile(r"\A[0-9a-f]{16,64}\Z")
CASE_ID = re.compile(r"\A[0-9a-f]{32}\Z")
MAX_SEQ = 2**31 - 1
MAX_CATCH_UP = 1000  # a desk restored from a backup is this many exports behind, at most
MAX_REFUSALS = 10_000
MAX_ENVELOPE_BYTES = 64 * 1024 * 1024
OLDEST_DAY = dt.date(2020, 1, 1)


@dataclass(frozen=True)
class Arrival:
    """One new item, as the import result lists it."""

    case: str
    kind: str  # report, message, answer or file
    id: str


@dataclass(frozen=True)
class ImportResult:
    new: int  # envelopes kept
    already: int  # envelopes the desk already had
    files: int = 0
    damaged: int = 0
    arrivals: tuple[Arrival, ...] = field(default=(), compare=False)
    notes: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Labels:
    """The portal's unsigned labels of an envelope: its case, day and order."""

    case: str
    day: dt.date
    seq: int


@dataclass
class _Plan:
    envelopes: list[tuple[Item, Labels, Opened]] = field(default_factory=list)
    files: list[tuple[Item, CaseFile, str]] = field(default_factory=list)  # item, file, case
    damaged: list[tuple[Item, str, str]] = field(default_factory=list)  # item, case, reason
    new_cases: dict[str, CaseKey] = field(default_factory=dict)
    seen_again: list[Item] = field(default_factory=list)  # kept before: acknowledge again
    notes: list[str] = field(default_factory=list)


def import_inbox(store: DeskStore, keys: DeskKeys, path: Path) -> ImportResult:
    """Check a whole inbox bundle, then keep what verifies and set aside what does not.

    Items are kept by their content (SHA-256): the portal's ids are only its
    word, so the desk acknowledges the pair (id, sha256) and the portal deletes
    an item only if that is exactly what it holds.
    """
    with store.changing():
        return _import(store, keys, path)


def _import(store: DeskStore, keys: DeskKeys, path: Path) -> ImportResult:
    own = {r.kid for r in keys.organization.encrypt}
    today = utc_today()
    with open_bundle(path, "inbox") as bundle:
        if bundle.manifest.org not in own:
            raise BundleError("this bundle was made by a portal for another organization's keys")
        _check_items(bundle.manifest.items)
        plan = _Plan()
        envelopes = [i for i in bundle.manifest.items if i.kind == "envelope"]
        blobs = [i for i in bundle.manifest.items if i.kind == "blob"]
        # Every new envelope goes to quarantine first (one in memory at a time);
        # reports are bound before follow-ups, which are bound to their report's key.
        kinds: dict[str, str] = {}
        for item in envelopes:
            if store.kept(item.sha256):
                plan.seen_again.append(item)
                continue
            if item.size > MAX_ENVELOPE_BYTES:  # no envelope is this large: not read in
                _stream_to_quarantine(store, bundle, item)
                plan.damaged.append((item, "", "it is far larger than any envelope"))
                continue
            document = bundle.read(item, max_bytes=MAX_ENVELOPE_BYTES)
            kinds[item.sha256] = _outer_field(document, "kind")
            store.blobs.put(f"quarantine/{item.sha256}", document)
        fresh = [i for i in envelopes if i.sha256 in kinds]
        fresh.sort(key=lambda i: 0 if kinds[i.sha256] == "report" else 1)
        for item in fresh:
            _plan_envelope(store, keys, plan, item)
        for item in blobs:
            _plan_blob(store, keys, plan, bundle, item)
        for item in bundle.manifest.items:
            if item.kind == "questionnaire" and item.size <= MAX_QUESTIONNAIRE_BYTES:
                refused = layout.keep(store, item.id, bundle.read(item), today)
                if refused:
                    plan.notes.append(refused)
        counters = _Counters.read(bundle.manifest.extra, keys, plan.notes)
        if bundle.manifest.extra.get("more") is True:
            plan.notes.append("the portal has more items waiting: carry another inbox after this")
        bundle_sha256 = _file_sha256(path)
    _write(store, plan, counters, today)
    _sweep_quarantine(store)
    store.custody.append(
        "import",
        keys.person,
        bundle_sha256=bundle_sha256,
        new=[{"id": i.id, "sha256": i.sha256} for i, _, _ in plan.envelopes]
        + [{"id": i.id, "sha256": i.sha256} for i, _, _ in plan.files],
        damaged=[{"id": i.id, "sha256": i.sha256, "reason": r} for i, _, r in plan.damaged],
        already=len(plan.seen_again),
    )
    arrivals = [Arrival(o.case_id, o.kind, i.id) for i, _, o in plan.envelopes]
    arrivals += [Arrival(case, "file", i.id) for i, _, case in plan.files]
    return ImportResult(
        new=len(plan.envelopes),
        already=sum(1 for i in plan.seen_again if i.kind == "envelope"),
        files=len(plan.files),
        damaged=len(plan.damaged),
        arrivals=tuple(arrivals),
        notes=tuple(plan.notes),
    )


def _check_items(items: Iterable[Item]) -> None:
    """What an honest portal always writes; anything else refuses the whole bundle."""
    for item in items:
        if not HEX_ID.match(item.id):
            raise BundleError("an item's id is malformed")
        expected = {
            "envelope": f"envelopes/{item.id}.json",
            "blob": f"blobs/{item.id}",
            "questionnaire": f"questionnaires/{item.id}.json",
        }
        if expected.get(item.kind) != item.name:
            raise BundleError(f"item {item.id} has an unknown kind or a name not its own")


def _outer_field(document: bytes, name: str) -> str:
    """A field of an envelope's unauthenticated outside ("kind", "sealed_by")."""
    try:
        value = json.loads(document).get(name)
    except (ValueError, AttributeError, RecursionError):
        return ""
    return value if isinstance(value, str) else ""


def _labels(item: Item) -> Labels | None:
    """The portal's labels, if they are of the shape an honest portal writes."""
    case, day, seq = item.meta.get("mailbox"), item.meta.get("day"), item.meta.get("seq", 1)
    try:
        parsed = dt.date.fromisoformat(day) if isinstance(day, str) else None
    except ValueError:
        parsed = None
    if not (isinstance(case, str) and CASE_ID.match(case) and parsed is not None):
        return None
    if not (OLDEST_DAY <= parsed <= utc_today() + dt.timedelta(days=1)):
        return None
    if not (isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= MAX_SEQ):
        return None
    return Labels(case, parsed, seq)


def _known(store: DeskStore, plan: _Plan) -> Callable[[str], CaseKey | None]:
    def known(case: str) -> CaseKey | None:
        if case in plan.new_cases:
            return plan.new_cases[case]
        row = store.case(case)
        return None if row is None else CaseKey(row.reporter_pk, row.kind)

    return known


def _plan_envelope(store: DeskStore, keys: DeskKeys, plan: _Plan, item: Item) -> None:
    labels = _labels(item)
    claimed = labels.case if labels else ""
    if labels is None:
        plan.damaged.append((item, claimed, "the portal's labels for it are malformed"))
        return
    if any(i.sha256 == item.sha256 for i, _, _ in plan.envelopes):
        plan.seen_again.append(item)  # the same bytes twice in one bundle
        return
    document = store.blobs.read(f"quarantine/{item.sha256}")
    try:
        opened = open_bound(document, keys, labels.case, _known(store, plan))
    except Unbound as exc:
        plan.damaged.append((item, claimed, str(exc)))
        return
    if opened.kind == "report":
        if _known(store, plan)(opened.case_id) is not None:
            plan.damaged.append((item, claimed, "a second report for a case that has one"))
            return
        plan.new_cases[opened.case_id] = CaseKey(opened.reporter_pk, "report")
    plan.envelopes.append((item, labels, opened))


def _describers(store: DeskStore, keys: DeskKeys, plan: _Plan, upload: str) -> list[Opened]:
    """Every verified envelope (in this bundle or kept before) that describes ``upload``."""
    found = [o for _, _, o in plan.envelopes if any(f.upload == upload for f in o.files)]
    for envelope_sha256, case in store.describers(upload):
        document = store.blobs.read(f"envelopes/{envelope_sha256}")
        try:
            found.append(open_bound(document, keys, case, _known(store, plan)))
        except Unbound:
            continue
    return found


def _stream_to_quarantine(store: DeskStore, bundle: Bundle, item: Item) -> Path:
    """Copy an item to quarantine a chunk at a time (a 1 GiB file never sits in memory)."""
    quarantine = store.blobs.path(f"quarantine/{item.sha256}")
    with atomic_writer(quarantine) as out:
        for chunk in bundle.stream(item):
            out.write(chunk)
    return quarantine


def _plan_blob(store: DeskStore, keys: DeskKeys, plan: _Plan, bundle: Bundle, item: Item) -> None:
    if store.kept(item.sha256) or any(i.sha256 == item.sha256 for i, _, _ in plan.files):
        plan.seen_again.append(item)
        return
    claimed = item.meta.get("mailbox")
    claimed = claimed if isinstance(claimed, str) and CASE_ID.match(claimed) else ""
    quarantine = _stream_to_quarantine(store, bundle, item)
    reason = "no verified envelope describes this file"
    for opened in _describers(store, keys, plan, item.id):
        described = next(f for f in opened.files if f.upload == item.id)
        if opened.case_id != claimed:
            reason = "the portal filed this file under another case"
            continue
        try:
            with quarantine.open("rb") as src:
                size = verify(src, described.seal).size
        except DamagedFile:
            reason = "it does not decrypt to the file its envelope describes"
            continue
        if size != described.size:
            reason = "it decrypts to a file of another size than its envelope says"
            continue
        plan.files.append((item, described, opened.case_id))
        return
    plan.damaged.append((item, claimed, reason))


@dataclass(frozen=True)
class _Counters:
    """The inbox's unsigned fields, bounded; None where one was refused."""

    outbox_seq: int | None
    refusals: tuple[tuple[str, int, str, str], ...]  # id, outbox, kind, reason
    checkpoint: tuple[int, str, bytes, int] | None  # n, hash, signature, outbox

    @classmethod
    def read(cls, extra: dict[str, Any], keys: DeskKeys, notes: list[str]) -> _Counters:
        seq = extra.get("outbox_seq", 0)
        if not (isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= MAX_SEQ):
            notes.append("the inbox's outbox number is malformed; it was ignored")
            seq = None
        return cls(seq, _refusals(extra.get("refused"), notes), _checkpoint(extra, keys, notes))


def _refusals(raw: object, notes: list[str]) -> tuple[tuple[str, int, str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_REFUSALS:
        notes.append("the inbox's list of refused items is malformed; it was ignored")
        return ()
    out = []
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        item, outbox, kind, reason = (entry.get(k) for k in ("id", "outbox", "kind", "reason"))
        if (
            isinstance(item, str)
            and HEX_ID.match(item)
            and isinstance(outbox, int)
            and 0 < outbox <= MAX_SEQ
            and kind in ("reply", "invitation", "ack")
            and isinstance(reason, str)
        ):
            out.append((item, outbox, kind, reason[:200]))
    return tuple(out)


def _checkpoint(
    extra: dict[str, Any], keys: DeskKeys, notes: list[str]
) -> tuple[int, str, bytes, int] | None:
    raw = extra.get("checkpoint")
    if raw is None:
        return None
    try:
        n, head, outbox = raw["n"], raw["hash"], raw["outbox"]
        signature = b64decode(raw["sig"], length=64)
        if not (isinstance(n, int) and isinstance(outbox, int) and isinstance(head, str)):
            raise TypeError("checkpoint fields")
        VerifyKey(keys.organization.verify_key).verify(checkpoint_message(n, head), signature)
    except (KeyError, TypeError, EncodingError, nacl.exceptions.BadSignatureError) as exc:
        notes.append(f"the inbox carries a custody checkpoint this desk did not sign ({exc})")
        return None
    return n, head, signature, outbox


def _write(store: DeskStore, plan: _Plan, counters: _Counters, today: dt.date) -> None:
    for item, _labels, _opened in plan.envelopes:
        _from_quarantine(store, item.sha256, "envelopes")
    for item, _file, _case in plan.files:
        _from_quarantine(store, item.sha256, "attachments")
    now = utc_now()
    with store.db.transaction() as s:
        state = s.get(DeskState, 1)
        assert state is not None
        arrival = state.arrivals or 0
        for case, key in plan.new_cases.items():
            s.add(DeskCase(id=case, reporter_pk=key.reporter_pk, kind=key.kind, opened_on=today))
        for item, labels, opened in plan.envelopes:
            arrival += 1
            document = store.blobs.read(f"envelopes/{item.sha256}")
            s.add(
                ReceivedEnvelope(
                    sha256=item.sha256,
                    id=item.id,
                    mailbox_id=opened.case_id,
                    kind=opened.kind,
                    sealed_by=_outer_field(document, "sealed_by")[:16] or "?",
                    size=item.size,
                    received_on=labels.day,
                    imported_on=today,
                    seq=labels.seq,
                    imported_at=now,
                    arrival=arrival,
                )
            )
            for f in opened.files:
                s.merge(
                    ExpectedFile(
                        upload_id=f.upload, envelope_sha256=item.sha256, case_id=opened.case_id
                    )
                )
            # A good copy came: what was set aside under this id is no longer needed.
            s.execute(delete(DamagedItem).where(DamagedItem.id == item.id))
        for item, _file, case in plan.files:
            s.add(
                ReceivedAttachment(
                    sha256=item.sha256,
                    id=item.id,
                    mailbox_id=case,
                    size=item.size,
                    imported_on=today,
                )
            )
            s.execute(delete(DamagedItem).where(DamagedItem.id == item.id))
        for item, case, reason in plan.damaged:
            _set_aside(s, item, case, reason, today)
        state.arrivals = arrival
        _seen_again(s, plan.seen_again)
        _apply_counters(s, counters, plan.notes, today)


def _sweep_quarantine(store: DeskStore) -> None:
    """Keep in quarantine only what is still kept aside: forget discards the portal
    has applied, and remove leftovers (a good copy came, an import was cut short)."""
    with store.db.transaction() as s:
        s.execute(delete(DamagedItem).where(DamagedItem.discard_confirmed))
        held = set(s.scalars(select(DamagedItem.sha256)))
    folder = store.blobs.root / "quarantine"
    for path in folder.glob("*") if folder.is_dir() else []:
        if path.name not in held:
            path.unlink(missing_ok=True)


def _from_quarantine(store: DeskStore, sha256: str, area: str) -> None:
    target = store.blobs.path(f"{area}/{sha256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(store.blobs.path(f"quarantine/{sha256}"), target)
    fsync_dir(target.parent)


def _set_aside(s: Session, item: Item, case: str, reason: str, today: dt.date) -> None:
    row = s.get(DamagedItem, item.sha256)
    if row is None:
        s.add(
            DamagedItem(
                sha256=item.sha256,
                id=item.id,
                kind=item.kind,
                claimed_case=case,
                reason=reason,
                size=item.size,
                first_seen=today,
                last_seen=today,
            )
        )
    else:
        row.reason, row.last_seen = reason, today
        row.discard_confirmed = False  # it came again: a discard was not applied yet


def _seen_again(s: Session, items: list[Item]) -> None:
    """Items the portal still holds as unacknowledged: acknowledge them again. Bytes
    the desk keeps, sent under another id (a copy), are acknowledged under that id
    too, and what is kept keeps its own id."""
    for item in items:
        row = s.get(ReceivedEnvelope, item.sha256) or s.get(ReceivedAttachment, item.sha256)
        if row is None:
            continue
        if row.id == item.id:
            row.ack_confirmed, row.ack_exported_in = False, None
        else:
            s.merge(AckAlias(id=item.id, sha256=item.sha256, ack_exported_in=None))


def _apply_counters(s: Session, counters: _Counters, notes: list[str], today: dt.date) -> None:
    state = s.get(DeskState, 1)
    assert state is not None
    if counters.outbox_seq is not None:
        claimed = counters.outbox_seq
        state.portal_seq = 0
        if claimed > state.export_seq:
            if claimed - state.export_seq <= MAX_CATCH_UP:
                state.portal_seq = claimed
                notes.append(
                    f"the portal reports outbox {claimed} applied, but this desk made only "
                    f"{state.export_seq}: if it was restored from a backup, its next outbox "
                    f"will be {claimed + 1}"
                )
            else:
                notes.append(f"the inbox claims outbox {claimed}, which this desk never made")
            claimed = state.export_seq
        if claimed < state.confirmed_seq:
            notes.append(
                f"the portal now reports outbox {claimed} as its last, fewer than before: "
                "everything since will be sent again"
            )
        _confirm(s, claimed)
        state.confirmed_seq = claimed
    for item, outbox, kind, reason in counters.refusals:
        s.merge(OutboxRefusal(id=item, outbox=outbox, kind=kind, reason=reason, seen_on=today))
    if counters.refusals:
        notes.append(f"the portal refused {len(counters.refusals)} item(s) of our outboxes")
    if counters.checkpoint is not None:
        n, head, signature, outbox = counters.checkpoint
        s.merge(Checkpoint(n=n, hash=head, signature=signature, outbox=outbox))


def _confirm(s: Session, applied: int) -> None:
    """Items of outboxes up to ``applied`` arrived; those of later ones must be sent again."""
    for table, column, flag in (
        (WitnessInvitation, WitnessInvitation.exported_in, WitnessInvitation.confirmed),
        (SentReply, SentReply.exported_in, SentReply.confirmed),
        (ReceivedEnvelope, ReceivedEnvelope.ack_exported_in, ReceivedEnvelope.ack_confirmed),
        (ReceivedAttachment, ReceivedAttachment.ack_exported_in, ReceivedAttachment.ack_confirmed),
        (AckAlias, AckAlias.ack_exported_in, AckAlias.ack_confirmed),
        (DamagedItem, DamagedItem.discard_exported_in, DamagedItem.discard_confirmed),
    ):
        s.execute(update(table).where(column <= applied).values({flag.key: True}))
        s.execute(update(table).where(column > applied).values({flag.key: False}))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def stored_case_keys(store: DeskStore) -> dict[str, CaseKey]:
    with store.db.reading() as s:
        return {c.id: CaseKey(c.reporter_pk, c.kind) for c in s.scalars(select(DeskCase))}


def discard_items(store: DeskStore, names: list[str], by: str) -> int:
    """Staff give up on items kept aside (named by SHA-256 or the portal's id): the
    next outbox asks the portal to delete them, if it holds exactly those bytes."""
    done: list[str] = []
    with store.changing(), store.db.transaction() as s:
        for name in names:
            rows = list(
                s.scalars(
                    select(DamagedItem).where(
                        (DamagedItem.sha256 == name) | (DamagedItem.id == name)
                    )
                )
            )
            if not rows:
                raise KeyError(name)
            for row in rows:
                row.discarded, row.discard_exported_in, row.discard_confirmed = True, None, False
                done.append(row.sha256)
    if done:
        store.custody.append("discard", by, items=sorted(done))
    return len(done)
