"""A case's mailbox key: what the server keeps of a code (DESIGN §7).

The code derives ``lookup`` and ``wrap`` (``codes.derive``). The server keeps
SHA-256(lookup) as the mailbox's index and the reporter's secret key wrapped
under ``wrap`` (nonce ‖ secretbox); it never sees ``wrap`` or the code. The
browser twin is ``static/src/protocol/mailbox.js``.
"""

from __future__ import annotations

from dataclasses import dataclass

from nacl.public import PrivateKey
from nacl.secret import SecretBox

from portal.common.errors import NamedError
from portal.protocol import codes
from portal.protocol.encoding import EncodingError, b64decode
from portal.protocol.envelopes import case_id
from portal.protocol.organization import Organization

INDEX_BYTES = 32
WRAPPED_KEY_BYTES = 24 + 16 + 32  # nonce, MAC, X25519 secret key
PUBLIC_KEY_BYTES = 32


class MailboxKeyError(NamedError, ValueError):
    """A mailbox key (or new mailbox) of the wrong fields or sizes."""

    REASON = "mailbox"


@dataclass(frozen=True)
class MailboxKey:
    """What the server keeps of a code: SHA-256(lookup) and the wrapped reporter key."""

    index: bytes
    wrapped_key: bytes

    @classmethod
    def from_json(cls, doc: object) -> MailboxKey:
        if not isinstance(doc, dict) or set(doc) != {"index", "wrapped_key"}:
            raise MailboxKeyError("the mailbox key has the wrong fields")
        try:
            return cls(
                index=b64decode(doc["index"], length=INDEX_BYTES),
                wrapped_key=b64decode(doc["wrapped_key"], length=WRAPPED_KEY_BYTES),
            )
        except EncodingError as exc:
            raise MailboxKeyError(f"the mailbox key is malformed: {exc}") from exc


@dataclass(frozen=True)
class NewMailbox:
    """A new case: its first code's key, and the reporter's public key, whose
    case id (envelopes.case_id) is the mailbox's id."""

    key: MailboxKey
    public_key: bytes

    @property
    def id(self) -> str:
        return case_id(self.public_key)

    @classmethod
    def from_json(cls, doc: object) -> NewMailbox:
        if not isinstance(doc, dict) or set(doc) != {"index", "wrapped_key", "public_key"}:
            raise MailboxKeyError("the new mailbox has the wrong fields")
        try:
            public_key = b64decode(doc["public_key"], length=PUBLIC_KEY_BYTES)
        except EncodingError as exc:
            raise MailboxKeyError(f"the public key is malformed: {exc}") from exc
        key = MailboxKey.from_json({"index": doc["index"], "wrapped_key": doc["wrapped_key"]})
        return cls(key=key, public_key=public_key)


def new_mailbox_key(code: str, org: Organization, reporter: PrivateKey) -> MailboxKey:
    """Derive the code and wrap the reporter's secret key under it."""
    derived = codes.derive(code, org.code_salt, org.kdf)
    return MailboxKey(index=derived.index, wrapped_key=wrap_key(reporter, derived.wrap))


def wrap_key(reporter: PrivateKey, wrap: bytes) -> bytes:
    """nonce ‖ secretbox(secret key, nonce, wrap): the reporter key as the server keeps it."""
    return bytes(SecretBox(wrap).encrypt(bytes(reporter)))


def new_mailbox(code: str, org: Organization, reporter: PrivateKey) -> NewMailbox:
    """What the server stores of a new case: the code's index, the wrapped key, the
    public key (whose case id is the mailbox's)."""
    return NewMailbox(new_mailbox_key(code, org, reporter), bytes(reporter.public_key))


def unwrap_key(wrap: bytes, wrapped_key: bytes) -> PrivateKey:
    """The reporter's secret key, from the wrapped key and the code's ``wrap``."""
    return PrivateKey(SecretBox(wrap).decrypt(wrapped_key))
