"""Opening a case on the server, in memory, for reporters without JavaScript.

The browser does all of this itself when it can. Here the server derives the
code (PBKDF2, as the browser would), unwraps the reporter's key, opens and verifies the desk's
replies, makes the next code and stores it as a pending rotation, and forgets.
Every failure raises the same CaseNotFound after the same work.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass

import nacl.exceptions
from nacl.public import PrivateKey

from portal.protocol import codes
from portal.protocol.mailbox import new_mailbox_key, unwrap_key
from portal.protocol.organization import Organization
from portal.protocol.replies import ReplyItem, verified_in_order
from portal.protocol.reports import open_copy
from portal.server.mailboxes import CaseRecord, MailboxError, Mailboxes

# Derived when the typed code cannot be right, so every failure costs the same.
_DECOY = "0" * 23 + str(codes.damm_digit("0" * 23))


class CaseNotFound(LookupError):
    """One neutral failure for an unknown, a dead or a pending code; ``typo`` says
    the typed code cannot be any code (a check digit or length that is wrong), as
    the browser tells without asking anyone."""

    def __init__(self, typo: bool = False) -> None:
        super().__init__("typo" if typo else "not found")
        self.typo = typo


@dataclass(frozen=True)
class ShownItem:
    """A reply as the reporter sees it; ``item`` is None when it failed verification."""

    seq: int
    day: dt.date
    item: ReplyItem | None


@dataclass(frozen=True)
class SentShown:
    """Something the reporter sent; ``fields`` when they kept a copy they can read."""

    kind: str
    day: dt.date
    size: int
    fields: dict[str, str] | None


@dataclass(frozen=True)
class CaseView:
    """A case as its reporter sees it, opened in memory with its key."""

    record: CaseRecord
    items: tuple[ShownItem, ...]
    sent: tuple[SentShown, ...]

    @property
    def witness(self) -> bool:
        return self.record.kind == "invitation"

    @property
    def questions(self) -> ShownItem | None:
        """A witness case's questions: the desk's first item, asked of them."""
        return next(
            (i for i in self.items if i.item is not None and i.item.type == "questions"), None
        )

    @property
    def history(self) -> list[tuple[str, str]]:
        """Received on the day the case was made, then every status the desk set."""
        history = [("received", self.record.created_on.isoformat())]
        for shown in self.items:
            if shown.item is not None and shown.item.status:
                history.append((shown.item.status, shown.item.date))
        return history


@dataclass(frozen=True)
class OpenedCase:
    view: CaseView
    new_code: str
    rotation: str
    reporter: PrivateKey  # in memory: it signs the reporter's follow-ups in this session
    opened_with: str  # the code that opened it, which works until the new one is confirmed

    @property
    def record(self) -> CaseRecord:
        return self.view.record


def derive_typed(typed: str, org: Organization) -> tuple[codes.CodeKeys, bool]:
    """Derive a typed code, or a decoy if it cannot be right: the same work either way."""
    try:
        return codes.derive(codes.normalise(typed), org.code_salt, org.kdf), True
    except codes.CodeError:
        return codes.derive(_DECOY, org.code_salt, org.kdf), False


def open_with_code(mailboxes: Mailboxes, org: Organization, typed: str) -> OpenedCase:
    derived, well_formed = derive_typed(typed, org)
    record = mailboxes.find(derived.index)  # looked up even for a decoy: same timing
    if not well_formed or record is None:
        raise CaseNotFound(typo=not well_formed)
    try:
        reporter = unwrap_key(derived.wrap, record.wrapped_key)
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise CaseNotFound from exc
    new_code = codes.generate()
    key = new_mailbox_key(new_code, org, reporter)
    try:
        rotation = mailboxes.begin_rotation(record.mailbox_id, key, record.generation)
    except MailboxError as exc:  # rotated away a moment ago: the code is dead now
        raise CaseNotFound from exc
    return OpenedCase(
        view=view_of(record, reporter, org),
        new_code=new_code,
        rotation=rotation,
        reporter=reporter,
        opened_with=codes.normalise(typed),
    )


def view_of(record: CaseRecord, reporter: PrivateKey, org: Organization) -> CaseView:
    """The case opened with its key: the desk's items verified, the reporter's copies read."""
    sent = tuple(
        SentShown(s.kind, s.day, s.size, open_copy(s.copy, reporter) if s.copy else None)
        for s in record.sent
    )
    return CaseView(record=record, items=shown_items(record, reporter, org), sent=sent)


def reopen(
    mailboxes: Mailboxes, org: Organization, mailbox_id: str, reporter: PrivateKey
) -> CaseView | None:
    """The open case again, for a page shown after a form was sent (no code needed:
    the session holds the key while the case is open)."""
    record = mailboxes.record(mailbox_id)
    return None if record is None else view_of(record, reporter, org)


def shown_items(
    record: CaseRecord, reporter: PrivateKey, org: Organization
) -> tuple[ShownItem, ...]:
    """The desk's items, opened and verified, in the order the desk signed them.

    The server's numbering is not trusted: an item whose signed number is not
    the one the server filed it under, or that repeats a number (an old status
    replayed as new), is shown as unverifiable, never as the latest word.
    """
    days = {stored.seq: stored.day for stored in record.replies}
    filed = [(stored.seq, stored.sealed) for stored in record.replies]
    return tuple(
        ShownItem(seq=seq, day=days[seq], item=item)
        for seq, item in verified_in_order(filed, reporter, org.verify_key)
    )


def group_matches(new_code: str, typed_group: str) -> bool:
    """Whether the typed digits are the new code's last group (any Unicode digits)."""
    try:
        digits = codes.ascii_digits(typed_group)
    except codes.CodeError:
        return False
    return hmac.compare_digest(digits, codes.last_group(new_code))
