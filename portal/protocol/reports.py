"""What a report is before sealing, and sealing one on the server (no-JS path).

The browser builds the same plaintext (static/src/reports.js); the desk reads
it. Without JavaScript the server does the browser's work in memory: makes the
reporter keypair and code, derives, wraps, seals, and forgets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
from nacl.public import PrivateKey, PublicKey, SealedBox

from portal.protocol import codes
from portal.protocol.encoding import b64decode, b64encode
from portal.protocol.envelopes import SealedEnvelope, is_bucket, pad, seal, unpad
from portal.protocol.mailbox import NewMailbox, new_mailbox
from portal.protocol.organization import Organization

REPORT_FORM = "report"
SEALED_OVERHEAD = 48  # crypto_box_seal: ephemeral public key and MAC
REPORT_FORM_VERSION = 1


def plaintext(
    kind: str,
    form: str,
    version: int,
    fields: Mapping[str, str],
    *,
    reply_pk: bytes | None = None,
    attachments: list[dict[str, Any]] | None = None,
    lang: str | None = None,
    form_digest: str | None = None,
) -> bytes:
    """The JSON document inside an envelope; a report carries its reporter's public
    key and the digest of the questionnaire it answers (its exact words, which the
    desk lays it out by), and any item may name the language of its sender's pages."""
    doc: dict[str, Any] = {
        "kind": kind,
        "form": form,
        "form_version": version,
        "fields": dict(fields),
        "attachments": attachments or [],
    }
    if lang:
        doc["lang"] = lang
    if form_digest:
        doc["form_digest"] = form_digest
    if kind == "report":
        if reply_pk is None:
            raise ValueError("a report carries its reporter's public key")
        doc["reply_pk"] = b64encode(reply_pk)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def seal_copy(reporter_pk: bytes, kind: str, fields: Mapping[str, str]) -> bytes:
    """The reporter's own copy of what they wrote (when they ask for one), sealed to
    their case's key: ``crypto_box_seal(pad({"kind","fields"}), reporter_pk)``.
    Only someone holding the case's code can read it; the organization's copy is
    the envelope. Files are not copied."""
    doc = json.dumps({"kind": kind, "fields": dict(fields)}, ensure_ascii=False).encode()
    return bytes(SealedBox(PublicKey(reporter_pk)).encrypt(pad(doc)))


def open_copy(sealed: bytes, reporter: PrivateKey) -> dict[str, str] | None:
    """The fields of a copy, or None if it does not open as one."""
    try:
        doc = json.loads(unpad(SealedBox(reporter).decrypt(sealed)))
    except (nacl.exceptions.CryptoError, ValueError):
        return None
    fields = doc.get("fields") if isinstance(doc, dict) else None
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        return None
    return {str(k): v for k, v in fields.items()}


def check_copy(value: object, max_bytes: int) -> bytes:
    """A copy sent by the browser: ciphertext of a padded size, and no larger than an
    envelope (the server cannot open it). ValueError otherwise."""
    data = b64decode(value)
    if len(data) > max_bytes or not is_bucket(len(data) - SEALED_OVERHEAD):
        raise ValueError("the copy is not a sealed, padded document")
    return data


def seal_follow_up(
    org: Organization,
    kind: str,
    text: str,
    reporter: PrivateKey,
    attachments: list[dict[str, Any]] | None = None,
    sealed_by: str = "server",
    lang: str | None = None,
) -> SealedEnvelope:
    """A message or a witness's answer, authenticated by the case's secret key."""
    body = plaintext(kind, kind, 1, {kind: text}, attachments=attachments, lang=lang)
    return seal(kind, body, org.encrypt, sealed_by=sealed_by, sender=reporter)


@dataclass(frozen=True)
class ServerSealed:
    """The result of sealing on the server: the code (to show once) and what to store."""

    code: str
    mailbox: NewMailbox
    envelope: SealedEnvelope
    copy: bytes | None = None  # the reporter's own copy, when asked for


def seal_on_server(
    org: Organization,
    form: str,
    version: int,
    form_digest: str,
    fields: Mapping[str, str],
    attachments: list[dict[str, Any]] | None = None,
    copy: Mapping[str, str] | None = None,
    lang: str | None = None,
) -> ServerSealed:
    """Everything the browser would have done, done in memory. ``copy`` is what the
    reporter's own copy says (their answers in words), when they asked for one."""
    reporter = PrivateKey.generate()
    code = codes.generate()
    body = plaintext(
        "report",
        form,
        version,
        fields,
        reply_pk=bytes(reporter.public_key),
        attachments=attachments,
        lang=lang,
        form_digest=form_digest,
    )
    envelope = seal("report", body, org.encrypt, sealed_by="server")
    own = seal_copy(bytes(reporter.public_key), "report", copy) if copy is not None else None
    return ServerSealed(
        code=code, mailbox=new_mailbox(code, org, reporter), envelope=envelope, copy=own
    )
