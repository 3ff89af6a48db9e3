"""Envelopes: the sealed form of every report, message and answer (DESIGN §6).

``{"v":1, "kind", "sealed_by", "recipients":[{"kid","key"}], "body"}`` where
``body`` is ``nonce ‖ crypto_secretbox(pad(plaintext), nonce, K)`` for a fresh
key K, and each recipient's ``key`` carries K to one organization key:

- a **report** is anonymous: ``crypto_box_seal(K, org_pk)``. Its plaintext
  holds the reporter's public key, whose :func:`case_id` is the case;
- a **message** or **answer** is authenticated by the reporter's secret key:
  ``nonce ‖ crypto_box(K, nonce, org_pk, reporter_sk)``. Only the holder of
  the case's secret key can make one that opens with the case's public key,
  so nobody handling a bundle can add an item to a case or move one to
  another case (docs/protocol.md).

The server can check the shape and the padded size, nothing more. Only the
desk can open one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils
from nacl.public import Box, PrivateKey, PublicKey, SealedBox
from nacl.secret import SecretBox

from portal.common.errors import PortalError
from portal.protocol.encoding import EncodingError, b64decode, b64encode
from portal.protocol.organization import Organization, RecipientKey

KINDS = ("report", "message", "answer")
FOLLOW_UPS = ("message", "answer")
SEALERS = ("browser", "server")
SEALED_KEY_BYTES = 32 + 48  # K inside crypto_box_seal: ephemeral pk, MAC, K
BOXED_KEY_BYTES = 24 + 16 + 32  # nonce, MAC, K
CASE_ID_HEX = 32
BODY_OVERHEAD = SecretBox.NONCE_SIZE + SecretBox.MACBYTES
STEP = 1024
LINEAR_LIMIT = 16 * 1024


class EnvelopeError(PortalError, ValueError):
    """An envelope of the wrong shape or size; ``reason`` is a stable short code."""


@dataclass(frozen=True)
class SealedEnvelope:
    """An envelope whose outer shape has been checked (or that we sealed).

    The storage layer takes only this type, so a route cannot store plaintext.
    """

    kind: str
    sealed_by: str
    document: bytes  # canonical JSON, as stored and bundled

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.document).hexdigest()

    @property
    def size(self) -> int:
        return len(self.document)


def bucket_size(length: int) -> int:
    """The padded size for ``length`` plaintext bytes (one byte of padding at least)."""
    need = length + 1
    if need <= LINEAR_LIMIT:
        return -(-need // STEP) * STEP
    size = LINEAR_LIMIT
    while size < need:
        size *= 2
    return size


def is_bucket(size: int) -> bool:
    if size <= 0:
        return False
    if size <= LINEAR_LIMIT:
        return size % STEP == 0
    return size & (size - 1) == 0


def pad(plaintext: bytes) -> bytes:
    """ISO/IEC 7816-4 padding (sodium_pad) to the bucket size."""
    padded: bytes = sodium.sodium_pad(plaintext, bucket_size(len(plaintext)))
    return padded


def unpad(padded: bytes) -> bytes:
    result: bytes = sodium.sodium_unpad(padded, len(padded))
    return result


# What each kind of case takes after it is made: a reporter sends messages, a
# witness invited by the desk sends answers.
FOLLOW_UP = {"report": "message", "invitation": "answer"}


def follow_up_kind(case_kind: str) -> str:
    return FOLLOW_UP.get(case_kind, "message")


def case_id(reporter_pk: bytes) -> str:
    """A case's id: from its reporter's public key, so the key names the case."""
    return hashlib.sha256(b"portal-case-v1" + reporter_pk).hexdigest()[:CASE_ID_HEX]


def key_bytes(kind: str) -> int:
    """How long a recipient's sealed ``key`` is for an envelope of ``kind``."""
    return SEALED_KEY_BYTES if kind == "report" else BOXED_KEY_BYTES


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


def seal(
    kind: str,
    plaintext: bytes,
    recipients: Iterable[RecipientKey],
    sealed_by: str,
    sender: PrivateKey | None = None,
) -> SealedEnvelope:
    """Seal plaintext to every recipient key; a follow-up needs the case's ``sender`` key."""
    if kind not in KINDS or sealed_by not in SEALERS:
        raise EnvelopeError("kind", "unknown envelope kind")
    if (sender is None) != (kind == "report"):
        raise EnvelopeError("sender", "a report is anonymous; a follow-up is sealed by its case")
    file_key = nacl.utils.random(SecretBox.KEY_SIZE)
    body = bytes(SecretBox(file_key).encrypt(pad(plaintext)))

    def carry(r: RecipientKey) -> bytes:
        if sender is None:
            return bytes(SealedBox(PublicKey(r.pk)).encrypt(file_key))
        return bytes(Box(sender, PublicKey(r.pk)).encrypt(file_key))

    doc = {
        "v": 1,
        "kind": kind,
        "sealed_by": sealed_by,
        "recipients": [{"kid": r.kid, "key": b64encode(carry(r))} for r in recipients],
        "body": b64encode(body),
    }
    return SealedEnvelope(kind=kind, sealed_by=sealed_by, document=_canonical(doc))


def check(
    doc: object,
    org: Organization,
    *,
    kinds: Iterable[str],
    sealed_by: str,
    max_bytes: int,
) -> SealedEnvelope:
    """Check an envelope's outer shape against the organization's keys.

    Every organization encryption key must be a recipient, and no other;
    the body must be padded to a bucket and no larger than ``max_bytes``.
    """
    if not isinstance(doc, dict) or set(doc) != {"v", "kind", "sealed_by", "recipients", "body"}:
        raise EnvelopeError("shape", "the envelope does not have the expected fields")
    if doc["v"] != 1:
        raise EnvelopeError("version", "unsupported envelope version")
    if doc["kind"] not in kinds:
        raise EnvelopeError("kind", "this kind of envelope is not accepted here")
    if doc["sealed_by"] != sealed_by:
        raise EnvelopeError("sealed_by", "the envelope names the wrong sealer")
    recipients = doc["recipients"]
    if not isinstance(recipients, list) or not recipients:
        raise EnvelopeError("recipients", "the envelope has no recipients")
    kids = []
    for entry in recipients:
        if not isinstance(entry, dict) or set(entry) != {"kid", "key"}:
            raise EnvelopeError("recipients", "a recipient entry is malformed")
        if not isinstance(entry["kid"], str) or org.recipient(entry["kid"]) is None:
            raise EnvelopeError("unknown_kid", "the envelope names an unknown recipient key")
        try:
            b64decode(entry["key"], length=key_bytes(doc["kind"]))
        except EncodingError as exc:
            raise EnvelopeError("recipients", "a recipient key is malformed") from exc
        kids.append(entry["kid"])
    if sorted(kids) != sorted(r.kid for r in org.encrypt):
        raise EnvelopeError("recipients", "the envelope must be sealed to every current key")
    if not isinstance(doc["body"], str) or len(doc["body"]) > max_bytes * 4 // 3 + 4:
        raise EnvelopeError("too_large", "the envelope is too large")
    try:
        body = b64decode(doc["body"])
    except EncodingError as exc:
        raise EnvelopeError("body", "the envelope body is malformed") from exc
    if not is_bucket(len(body) - BODY_OVERHEAD):
        raise EnvelopeError("padding", "the envelope body is not padded to a size bucket")
    document = _canonical(doc)
    if len(document) > max_bytes:
        raise EnvelopeError("too_large", "the envelope is too large")
    return SealedEnvelope(kind=doc["kind"], sealed_by=sealed_by, document=document)


def open_envelope(
    document: bytes, keys: dict[str, PrivateKey], sender_pk: bytes | None = None
) -> bytes:
    """Open an envelope with whichever of ``keys`` (by kid) it was sealed to.

    A follow-up opens only with its case's public key as ``sender_pk``; one
    made by anyone else, or for another case, raises EnvelopeError.
    """
    try:
        doc = json.loads(document)
        kind = doc["kind"]
        entries = doc["recipients"]
        body = b64decode(doc["body"])
    except (ValueError, KeyError, TypeError) as exc:
        raise EnvelopeError("shape", "the envelope is malformed") from exc
    if kind not in KINDS:
        raise EnvelopeError("kind", "unknown envelope kind")
    if kind != "report" and sender_pk is None:
        raise EnvelopeError("sender", "a follow-up opens only with its case's key")
    for entry in entries if isinstance(entries, list) else []:
        sk = keys.get(str(entry.get("kid"))) if isinstance(entry, dict) else None
        if sk is None:
            continue
        try:
            sealed_key = b64decode(entry["key"], length=key_bytes(kind))
            if kind == "report":
                file_key = SealedBox(sk).decrypt(sealed_key)
            else:
                assert sender_pk is not None
                file_key = Box(sk, PublicKey(sender_pk)).decrypt(sealed_key)
            return unpad(SecretBox(file_key).decrypt(body))
        except (nacl.exceptions.CryptoError, EncodingError, ValueError, TypeError, KeyError) as exc:
            raise EnvelopeError(
                "unopened",
                "this envelope does not open: damaged, or not made by this case's reporter",
            ) from exc
    raise EnvelopeError("no_key", "this envelope is not sealed to any key held here")
