"""Database tables of the online portal. Every column holds ciphertext,
hashes, sizes, opaque random ids or day dates: never plaintext, never a code."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Mailbox(Base):
    """One case as the reporter sees it, found by SHA-256(lookup) of its code."""

    __tablename__ = "mailboxes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    index: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary(128))
    pending_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    pending_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary(128))
    # The random id of the pending rotation, and of the last one confirmed, so a
    # confirmation names exactly the code the reporter wrote down.
    pending_rotation: Mapped[str | None] = mapped_column(String(32))
    rotation: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16), default="report")  # or "invitation"
    created_on: Mapped[dt.date] = mapped_column(Date)
    active_on: Mapped[dt.date] = mapped_column(Date)

    envelopes: Mapped[list[Envelope]] = relationship(back_populates="mailbox")
    replies: Mapped[list[Reply]] = relationship(back_populates="mailbox")


class Envelope(Base):
    """A sealed report, message or answer, its ciphertext in ``document``: stored
    in the same transaction (one fsync) as everything else the report changes."""

    __tablename__ = "envelopes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    mailbox_id: Mapped[str] = mapped_column(ForeignKey("mailboxes.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    sealed_by: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    received_on: Mapped[dt.date] = mapped_column(Date)
    acked_on: Mapped[dt.date | None] = mapped_column(Date)
    # Order within the mailbox: days are all we keep of time, so this orders a day.
    seq: Mapped[int] = mapped_column(Integer, default=1)
    # The reporter's own copy of what they wrote, sealed to their case's key (only
    # when they asked for one); it never goes to the desk.
    copy: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The sealed envelope itself, loaded only when asked for. None once the desk's
    # acknowledgment has aged out, and for envelopes stored before migration 0012,
    # which kept theirs in the blob store (``envelopes/<id>``).
    document: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)

    mailbox: Mapped[Mailbox] = relationship(back_populates="envelopes")


class Reply(Base):
    """A desk-signed item sealed to the reporter's key: a reply, a status, questions."""

    __tablename__ = "replies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    mailbox_id: Mapped[str] = mapped_column(ForeignKey("mailboxes.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    received_on: Mapped[dt.date] = mapped_column(Date)

    mailbox: Mapped[Mailbox] = relationship(back_populates="replies")


class OutboxImport(Base):
    """Each outbox bundle applied, by the desk's export number: replays are refused.

    It keeps the head of the desk's custody log that the outbox carried, signed
    by the desk: the newest goes back to the desk in every inbox, so a log
    rewritten or cut short on the desk is noticed there.
    """

    __tablename__ = "outbox_imports"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    applied_on: Mapped[dt.date] = mapped_column(Date)
    custody_n: Mapped[int | None] = mapped_column(Integer)
    custody_hash: Mapped[str | None] = mapped_column(String(64))
    custody_sig: Mapped[bytes | None] = mapped_column(LargeBinary(64))


class RefusedItem(Base):
    """An item of an applied outbox that the portal could not apply: the next
    inboxes tell the desk (which can remake it), until an outbox shows it saw them."""

    __tablename__ = "refused_items"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    outbox_seq: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200))


class StaffAccount(Base):
    """A relay account: carries bundles, never sees plaintext."""

    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    totp_sealed: Mapped[bytes] = mapped_column(LargeBinary)  # sealed with the data dir's key
    last_totp_counter: Mapped[int] = mapped_column(Integer, default=0)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[int] = mapped_column(Integer, default=0)  # epoch seconds
    created_on: Mapped[dt.date] = mapped_column(Date)


class Attachment(Base):
    """An evidence file's ciphertext: uploaded in parts, then attached to a mailbox.

    ``owner`` is a random token from the uploading session (never an address);
    it is cleared once the file is attached.
    """

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    part_size: Mapped[int] = mapped_column(Integer)
    parts: Mapped[int] = mapped_column(Integer)
    received: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    mailbox_id: Mapped[str | None] = mapped_column(ForeignKey("mailboxes.id"), index=True)
    created_on: Mapped[dt.date] = mapped_column(Date)
    acked_on: Mapped[dt.date | None] = mapped_column(Date)


class SessionRow(Base):
    """A browser session, found by a one-way hash of its cookie's random token.

    ``sealed`` is the session's data, sealed under a key derived from the token
    (which only the browser holds); ``expires`` is when it is dead (epoch seconds).
    """

    __tablename__ = "sessions"

    id: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    expires: Mapped[int] = mapped_column(Integer, index=True)


class SpentToken(Base):
    """The digest of something used once (a proof-of-work challenge, a submitted
    form) and the hour it belongs to, kept until it could no longer be used.
    Stored in digest order (no rowid), so the table holds no order of arrival."""

    __tablename__ = "spent_tokens"
    __table_args__ = ({"sqlite_with_rowid": False},)

    digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, index=True)


class PublishedFigures(Base):
    """The newest public figures the desk published (one row), as an outbox carried
    them, signed with the rest of it; shown on /transparency."""

    __tablename__ = "published_figures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    made_on: Mapped[dt.date] = mapped_column(Date)
    document: Mapped[str] = mapped_column(String(20_000))


class QuestionnaireDefinition(Base):
    """Every questionnaire definition the portal ever served, by digest: public
    text the organization wrote (no answers). Each inbox carries them all, so the
    desk can lay out any report by the very version its reporter answered."""

    __tablename__ = "questionnaire_definitions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    form: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary(1024 * 1024))
    first_served: Mapped[dt.date] = mapped_column(Date)


class ServerKey(Base):
    """Random keys every host of one portal must share (the CSRF token key and
    the proof-of-work tag key). Neither can open anything: they only let a form
    or a challenge made on one host be checked on another."""

    __tablename__ = "server_keys"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary(64))
