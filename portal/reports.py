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

from nacl.public import PrivateKey
from nacl.secret import SecretBox

from . import codes
from .encoding import b64encode
from .envelopes import SealedEnvelope, seal
from .mailboxes import MailboxKey
from .organization import Organization

REPORT_FORM = "report"
REPORT_FORM_VERSION = 1


def plaintext(
    form: str,
    version: int,
    fields: Mapping[str, str],
    reply_pk: bytes | None,
    attachments: list[dict[str, Any]] | None = None,
) -> bytes:
    """The JSON document that goes inside an envelope (follow-ups carry no reply key)."""
    doc: dict[str, Any] = {
        "form": form,
        "form_version": version,
        "fields": dict(fields),
        "attachments": attachments or [],
    }
    if reply_pk is not None:
        doc["reply_pk"] = b64encode(reply_pk)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class ServerSealed:
    """The result of sealing on the server: the code (to show once) and what to store."""

    code: str
    key: MailboxKey
    envelope: SealedEnvelope


def new_mailbox_key(code: str, org: Organization, reporter: PrivateKey) -> MailboxKey:
    """Derive the code and wrap the reporter's secret key under it."""
    derived = codes.derive(code, org.code_salt, org.kdf)
    wrapped = bytes(SecretBox(derived.wrap).encrypt(bytes(reporter)))
    return MailboxKey(index=derived.index, wrapped_key=wrapped)


def seal_on_server(
    org: Organization,
    form: str,
    version: int,
    fields: Mapping[str, str],
    attachments: list[dict[str, Any]] | None = None,
) -> ServerSealed:
    """Everything the browser would have done, done in memory."""
    reporter = PrivateKey.generate()
    code = codes.generate()
    key = new_mailbox_key(code, org, reporter)
    body = plaintext(form, version, fields, bytes(reporter.public_key), attachments)
    envelope = seal("report", body, org.encrypt, sealed_by="server")
    return ServerSealed(code=code, key=key, envelope=envelope)
