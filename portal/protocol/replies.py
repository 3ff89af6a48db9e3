"""Reply items: desk-signed, sealed to the reporter (DESIGN §8).

``crypto_box_seal(pad(crypto_sign(json)), reporter_pk)``. The server stores
them and cannot read or forge them; the reporter's browser (or, without
JavaScript, the server in memory) opens them, checks the desk's signature and
the mailbox id, and shows the text as text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import nacl.exceptions
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey, VerifyKey

from portal.common.errors import NamedError
from portal.common.languages import N_
from portal.protocol.envelopes import case_id, pad, unpad

STATUS_LABELS = {
    "received": N_("Received"),
    "in_review": N_("In review"),
    "more_info": N_("More information needed"),
    "legal_aid": N_("Referred to legal aid"),
    "closed": N_("Closed"),
}
STATUSES = tuple(STATUS_LABELS)
TYPES = ("reply", "questions")


class ReplyError(NamedError, ValueError):
    """A reply that cannot be opened, is not signed by the desk, or is for another case."""

    REASON = "reply"


@dataclass(frozen=True)
class ReplyItem:
    mailbox: str
    seq: int
    date: str
    status: str | None
    text: str
    type: str = "reply"

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise ReplyError(f"unknown status {self.status!r}")
        if self.type not in TYPES:
            raise ReplyError(f"unknown item type {self.type!r}")

    def to_bytes(self) -> bytes:
        doc = {"v": 1, **asdict(self)}
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def seal_reply(item: ReplyItem, signing_key: SigningKey, reporter_pk: bytes) -> bytes:
    """Sign on the desk, pad, and seal to the reporter's public key."""
    signed = bytes(signing_key.sign(item.to_bytes()))
    return bytes(SealedBox(PublicKey(reporter_pk)).encrypt(pad(signed)))


def parse_item(doc: Any) -> ReplyItem:
    try:
        if doc.pop("v") != 1:
            raise ReplyError("unsupported reply version")
        return ReplyItem(**doc)
    except (TypeError, KeyError, AttributeError) as exc:
        raise ReplyError("malformed reply") from exc


def open_reply(
    sealed: bytes, reporter_sk: PrivateKey, verify_key: bytes, mailbox_id: str
) -> ReplyItem:
    """Open, verify the desk's signature, and check the item belongs to this case."""
    try:
        signed = unpad(SealedBox(reporter_sk).decrypt(sealed))
        message = VerifyKey(verify_key).verify(signed)
        item = parse_item(json.loads(message))
    except (nacl.exceptions.CryptoError, nacl.exceptions.BadSignatureError, ValueError) as exc:
        if isinstance(exc, ReplyError):
            raise
        raise ReplyError("this reply could not be verified") from exc
    if item.mailbox != mailbox_id:
        raise ReplyError("this reply belongs to another case")
    return item


def verified_in_order(
    filed: Sequence[tuple[int, bytes]], reporter_sk: PrivateKey, verify_key: bytes
) -> list[tuple[int, ReplyItem | None]]:
    """The desk's items as the server filed them (number, sealed), opened and
    verified, in the order the desk signed them; ``None`` where an item cannot be
    trusted. The server's numbering is not: an item whose signed number is not the
    one it was filed under, or that repeats a number (an old status replayed as
    new), is unverifiable, never the latest word. The case is our own key's case,
    not the server's word. Twin of ``verifiedInOrder`` in replies.js."""
    own_case = case_id(bytes(reporter_sk.public_key))
    taken: set[int] = set()
    opened: list[tuple[int, ReplyItem | None]] = []
    for seq, sealed in filed:
        try:
            item: ReplyItem | None = open_reply(sealed, reporter_sk, verify_key, own_case)
        except ReplyError:
            item = None
        if item is not None and (item.seq != seq or item.seq in taken):
            item = None
        if item is not None:
            taken.add(item.seq)
        opened.append((seq, item))
    return sorted(opened, key=lambda pair: pair[0])
