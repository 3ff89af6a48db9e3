"""Test helpers that do what the browser does, with PyNaCl, to drive the API."""

from __future__ import annotations

import json
from typing import Any

from nacl.public import PrivateKey

from portal.protocol import codes
from portal.protocol.encoding import b64encode
from portal.protocol.envelopes import seal
from portal.protocol.mailbox import new_mailbox
from portal.protocol.organization import Organization
from portal.protocol.reports import plaintext


def browser_style_request(
    org: Organization, text: str, attachments: list[dict[str, Any]] | None = None
) -> tuple[str, dict[str, Any]]:
    """A code and the JSON body the browser would post for a report of ``text``."""
    reporter = PrivateKey.generate()
    code = codes.generate()
    new = new_mailbox(code, org, reporter)
    body = plaintext(
        "report",
        "report",
        1,
        {"what_happened": text},
        reply_pk=bytes(reporter.public_key),
        attachments=attachments,
    )
    envelope = seal("report", body, org.encrypt, sealed_by="browser")
    request = {
        "envelope": json.loads(envelope.document),
        "mailbox": {
            "index": b64encode(new.key.index),
            "wrapped_key": b64encode(new.key.wrapped_key),
            "public_key": b64encode(new.public_key),
        },
    }
    return code, request
