"""What the desk keeps: envelopes exactly as received (ciphertext) and an index.

Replies the desk wrote are kept twice, both encrypted: sealed to the reporter
(what goes out) and sealed to the desk's own key (so staff can reread them).
Staff's own case work (notes, tags, assignment, due dates) and unsaved drafts
are sealed to the desk's own public key too, so even a draft saved while the
desk is locked is never plaintext on disk. Plaintext exists only in memory
while the desk is unlocked.

Times of day are the desk's own (UTC, naive in the database); the portal still
sends days only. A desk made before a column existed gains it, empty, when
opened (``_add_missing_columns``): every column added since the first release
is nullable.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    String,
    Text,
    delete,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from portal.common.blobs import BlobStore
from portal.common.db import Database
from portal.desk.custody import CustodyLog
from portal.desk.lock import desk_lock
from portal.protocol.encoding import b64encode

DB_FILE = "desk.sqlite"


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def utc_now() -> dt.datetime:
    """Now, to the second, in UTC (stored naive: every time on the desk is UTC)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)


class DeskBase(DeclarativeBase):
    pass


class ReceivedEnvelope(DeskBase):
    """An imported envelope, kept by its content: its ciphertext is in the blob store
    as ``envelopes/<sha256>``. ``id`` is the portal's name for it, which is only the
    portal's word; what the desk acknowledges is the pair (id, sha256)."""

    __tablename__ = "received_envelopes"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), index=True)
    mailbox_id: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    sealed_by: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    received_on: Mapped[dt.date] = mapped_column(Date)
    imported_on: Mapped[dt.date] = mapped_column(Date)
    seq: Mapped[int] = mapped_column(Integer, default=1)
    # When this desk kept it, and the desk-wide arrival number that orders what is
    # new for each person (SeenMark); empty for envelopes kept before they existed.
    imported_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    arrival: Mapped[int | None] = mapped_column(Integer)
    # The outbox that last carried this envelope's ack, and whether the portal applied it.
    ack_exported_in: Mapped[int | None] = mapped_column(Integer)
    ack_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)


class ReceivedAttachment(DeskBase):
    """An imported evidence file, still encrypted, kept by its content
    (``attachments/<sha256>``); ``id`` is the upload id its envelope names."""

    __tablename__ = "received_attachments"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), index=True)
    mailbox_id: Mapped[str] = mapped_column(String(32), index=True)
    size: Mapped[int] = mapped_column(Integer)
    imported_on: Mapped[dt.date] = mapped_column(Date)
    ack_exported_in: Mapped[int | None] = mapped_column(Integer)
    ack_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)


class SentReply(DeskBase):
    """A reply, status or set of questions written on the desk."""

    __tablename__ = "sent_replies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    mailbox_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    written_on: Mapped[dt.date] = mapped_column(Date)
    for_reporter: Mapped[bytes] = mapped_column(LargeBinary)
    for_desk: Mapped[bytes] = mapped_column(LargeBinary)
    exported_in: Mapped[int | None] = mapped_column(Integer)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    by: Mapped[str | None] = mapped_column(String(80))
    written_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class WitnessInvitation(DeskBase):
    """A mailbox the desk made for a witness; the code was shown once and not kept."""

    __tablename__ = "invitations"

    mailbox_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    index: Mapped[bytes] = mapped_column(LargeBinary(32))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary(128))
    reporter_pk: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_on: Mapped[dt.date] = mapped_column(Date)
    exported_in: Mapped[int | None] = mapped_column(Integer)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    concerns: Mapped[str | None] = mapped_column(String(32), index=True)  # the case it is about
    language: Mapped[str | None] = mapped_column(String(8))  # of the witness's sheet
    by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class DeskCase(DeskBase):
    """A case as the desk knows it: the reporter's (or witness's) public key names
    it (envelopes.case_id), learnt from its own first report or made here."""

    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    reporter_pk: Mapped[bytes] = mapped_column(LargeBinary(32))
    kind: Mapped[str] = mapped_column(String(16))  # "report" or "invitation"
    opened_on: Mapped[dt.date] = mapped_column(Date)


class AckAlias(DeskBase):
    """Another id under which the portal sent bytes the desk already keeps (a copy):
    acknowledged too, without renaming what is kept."""

    __tablename__ = "ack_aliases"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    ack_exported_in: Mapped[int | None] = mapped_column(Integer)
    ack_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)


class ExpectedFile(DeskBase):
    """An evidence file a kept envelope describes (its key is in that envelope)."""

    __tablename__ = "expected_files"

    upload_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    envelope_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(32), index=True)


class DamagedItem(DeskBase):
    """An item that failed its checks: kept aside (``quarantine/<sha256>``), never
    acknowledged, so the portal sends it again until a good copy arrives, unless
    staff discard it. A discard names these very bytes: it cannot delete a good
    copy the portal holds under the same id."""

    __tablename__ = "damaged_items"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "envelope" or "blob"
    claimed_case: Mapped[str] = mapped_column(String(32), index=True)  # the portal's word
    reason: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[dt.date] = mapped_column(Date)
    last_seen: Mapped[dt.date] = mapped_column(Date)
    discarded: Mapped[bool] = mapped_column(Boolean, default=False)
    discard_exported_in: Mapped[int | None] = mapped_column(Integer)
    discard_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)


class OutboxRefusal(DeskBase):
    """An item of one of our outboxes that the portal refused, as an inbox told us."""

    __tablename__ = "outbox_refusals"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    outbox: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200))
    seen_on: Mapped[dt.date] = mapped_column(Date)


class Checkpoint(DeskBase):
    """A signed head of the custody log that the portal holds, as an inbox brought it."""

    __tablename__ = "checkpoints"

    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    outbox: Mapped[int] = mapped_column(Integer)


class DeskState(DeskBase):
    """Counters: the last outbox number used, and the last one the portal says it
    applied (``confirmed_seq``, from the newest inbox; never above ``export_seq``)."""

    __tablename__ = "desk_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    export_seq: Mapped[int] = mapped_column(Integer, default=0)
    confirmed_seq: Mapped[int] = mapped_column(Integer, default=0)
    # The newest outbox number any inbox reported, when above export_seq (a desk
    # restored from a backup): only the next export number may catch up to it.
    portal_seq: Mapped[int] = mapped_column(Integer, default=0)
    arrivals: Mapped[int | None] = mapped_column(Integer, default=0)  # the last arrival number


class CaseEvent(DeskBase):
    """A piece of staff's own work on a case (a note, its tags, who it is assigned
    to, when a reply is due), sealed to the desk's own key. It never leaves the
    desk: no outbox carries it. The newest event of a kind is the current value."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # note, tags, assign, due
    by: Mapped[str] = mapped_column(String(80))
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class SeenMark(DeskBase):
    """How far a person has looked at a case: the newest arrival number they saw."""

    __tablename__ = "seen_marks"

    person: Mapped[str] = mapped_column(String(80), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    upto: Mapped[int] = mapped_column(Integer, default=0)


class Draft(DeskBase):
    """Words a person was writing when the desk locked or refused them, sealed to
    the desk's own public key (so it can be kept without the private keys), given
    back after they unlock, deleted once saved."""

    __tablename__ = "drafts"

    person: Mapped[str] = mapped_column(String(80), primary_key=True)
    place: Mapped[str] = mapped_column(String(64), primary_key=True)  # e.g. reply:<case>
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class FormOnce(DeskBase):
    """A form that was already acted on (its one-time field), and what it made:
    sending the same form again (a refresh, a double click, Back and resubmit)
    gives that result back instead of making a second one."""

    __tablename__ = "forms_once"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    made: Mapped[str] = mapped_column(String(80))
    at: Mapped[dt.datetime] = mapped_column(DateTime)


class FileFacts(DeskBase):
    """What the desk learnt from a verified file's plaintext (named by its
    SHA-256): whether it still carries location metadata."""

    __tablename__ = "file_facts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    location: Mapped[bool] = mapped_column(Boolean)


class SpentCode(DeskBase):
    """A one-time code's time step, once it unlocked the desk for a person."""

    __tablename__ = "spent_codes"

    person: Mapped[str] = mapped_column(String(80), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)


class PartnerRow(DeskBase):
    """A partner organization, as a person on this desk confirmed it."""

    __tablename__ = "partners"

    verify_kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    organization: Mapped[str] = mapped_column(String(4000))  # its public JSON
    added_by: Mapped[str] = mapped_column(String(80))
    added_at: Mapped[dt.datetime] = mapped_column(DateTime)


class ReceivedReferral(DeskBase):
    """A case another desk referred to us, kept as the file it came in
    (``referrals/<sha256>``, still encrypted to our key)."""

    __tablename__ = "received_referrals"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner: Mapped[str] = mapped_column(String(64))  # its verify_kid
    their_case: Mapped[str] = mapped_column(String(40))  # the case's name on their desk
    received_at: Mapped[dt.datetime] = mapped_column(DateTime)
    by: Mapped[str] = mapped_column(String(80))


class Setting(DeskBase):
    """Public settings of the desk (the portal's addresses for invitation sheets)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class KnownQuestionnaire(DeskBase):
    """A questionnaire definition an inbox carried, by the digest reports seal."""

    __tablename__ = "questionnaires"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    form: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)  # its canonical JSON
    received_on: Mapped[dt.date] = mapped_column(Date)


def _add_missing_columns(engine: Engine) -> None:
    """Give a desk made by an older release the columns added since (all nullable)."""
    found = inspect(engine)
    with engine.begin() as conn:
        for table in DeskBase.metadata.sorted_tables:
            have = {c["name"] for c in found.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have:
                    kind = column.type.compile(engine.dialect)
                    conn.execute(
                        text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')
                    )


@dataclass(frozen=True)
class Refused:
    id: str
    outbox: int
    kind: str
    reason: str
    seen_on: dt.date


class DeskStore:
    """The desk home's database and blob store."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = Database(f"sqlite:///{home / DB_FILE}")
        DeskBase.metadata.create_all(self.db.engine)
        _add_missing_columns(self.db.engine)
        with self.db.transaction() as s:
            if s.get(DeskState, 1) is None:
                s.add(DeskState(id=1, export_seq=0, confirmed_seq=0))
        self.blobs = BlobStore(home / "blobs")
        self.custody = CustodyLog(home / "custody.log")

    def changing(self) -> AbstractContextManager[None]:
        """Hold this home for one change (see lock.py): CLI and web share it."""
        return desk_lock(self.home)

    def spend_code(self, person: str, step: int) -> bool:
        """Record that ``person``'s one-time code of time step ``step`` was used;
        False when it already was (someone replaying a code they saw typed)."""
        try:
            with self.db.transaction() as s:
                if s.get(SpentCode, (person, step)) is not None:
                    return False
                s.execute(
                    delete(SpentCode).where(SpentCode.person == person, SpentCode.step < step - 10)
                )
                s.add(SpentCode(person=person, step=step))
        except IntegrityError:  # the same code, used at the same moment elsewhere
            return False
        return True

    def kept(self, sha256: str) -> bool:
        """Whether an envelope or file with exactly these bytes is kept already."""
        with self.db.reading() as s:
            return (
                s.get(ReceivedEnvelope, sha256) is not None
                or s.get(ReceivedAttachment, sha256) is not None
            )

    def describers(self, upload_id: str) -> list[tuple[str, str]]:
        """(envelope sha256, case id) of every kept envelope that describes this file."""
        with self.db.reading() as s:
            rows = s.execute(
                select(ExpectedFile.envelope_sha256, ExpectedFile.case_id).where(
                    ExpectedFile.upload_id == upload_id
                )
            )
            return [(e, c) for e, c in rows]

    def attachments(self, upload_id: str, case_id: str) -> list[ReceivedAttachment]:
        """The kept files of ``case_id`` under this upload id (a hostile portal may
        have sent more than one; only one can decrypt to what the case sealed)."""
        with self.db.reading() as s:
            return list(
                s.scalars(
                    select(ReceivedAttachment).where(
                        ReceivedAttachment.id == upload_id,
                        ReceivedAttachment.mailbox_id == case_id,
                    )
                )
            )

    def case_ids(self) -> list[str]:
        """Every case: reports received and invitations made, oldest first."""
        with self.db.reading() as s:
            first: dict[str, dt.date] = {}
            for mailbox_id, day in s.execute(
                select(
                    ReceivedEnvelope.mailbox_id, func.min(ReceivedEnvelope.received_on)
                ).group_by(ReceivedEnvelope.mailbox_id)
            ):
                first[mailbox_id] = day
            for inv in s.scalars(select(WitnessInvitation)):
                first[inv.mailbox_id] = min(
                    first.get(inv.mailbox_id, inv.created_on), inv.created_on
                )
        return sorted(first, key=lambda m: (first[m], m))

    def case(self, case_id: str) -> DeskCase | None:
        with self.db.reading() as s:
            return s.get(DeskCase, case_id)

    def refusals(self) -> list[Refused]:
        """Items of this desk's outboxes the portal refused, as the inboxes said."""
        with self.db.reading() as s:
            return [
                Refused(r.id, r.outbox, r.kind, r.reason, r.seen_on)
                for r in s.scalars(select(OutboxRefusal).order_by(OutboxRefusal.outbox))
            ]

    def exports_made(self) -> int:
        with self.db.reading() as s:
            state = s.get(DeskState, 1)
            return state.export_seq if state else 0

    def checkpoints(self) -> list[dict[str, object]]:
        """Every signed custody head this desk made or an inbox brought back."""
        with self.db.reading() as s:
            return [
                {"n": c.n, "hash": c.hash, "sig": b64encode(c.signature), "outbox": c.outbox}
                for c in s.scalars(select(Checkpoint).order_by(Checkpoint.n))
            ]

    def damaged(self, case_id: str | None = None) -> list[DamagedItem]:
        """Items kept aside (all, or those the portal filed under ``case_id``)."""
        with self.db.reading() as s:
            query = select(DamagedItem).order_by(DamagedItem.first_seen, DamagedItem.sha256)
            if case_id is not None:
                query = query.where(DamagedItem.claimed_case == case_id)
            return list(s.scalars(query))

    def envelopes(self, mailbox_id: str | None = None) -> list[ReceivedEnvelope]:
        with self.db.reading() as s:
            query = select(ReceivedEnvelope).order_by(
                ReceivedEnvelope.received_on, ReceivedEnvelope.seq, ReceivedEnvelope.sha256
            )
            if mailbox_id is not None:
                query = query.where(ReceivedEnvelope.mailbox_id == mailbox_id)
            return list(s.scalars(query))

    def replies(self, mailbox_id: str) -> list[SentReply]:
        with self.db.reading() as s:
            return list(
                s.scalars(
                    select(SentReply)
                    .where(SentReply.mailbox_id == mailbox_id)
                    .order_by(SentReply.seq)
                )
            )

    def invitation(self, mailbox_id: str) -> WitnessInvitation | None:
        with self.db.reading() as s:
            return s.get(WitnessInvitation, mailbox_id)
