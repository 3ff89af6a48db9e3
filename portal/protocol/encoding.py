"""Base64url without padding: the one binary-to-text encoding of every format."""

from __future__ import annotations

import base64
import binascii
import re

from portal.common.errors import NamedError

_B64URL = re.compile(r"\A[A-Za-z0-9_-]*\Z")


class EncodingError(NamedError, ValueError):
    """A field that should be base64url is not."""

    REASON = "encoding"


def b64encode(data: bytes) -> str:
    """Encode bytes as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: object, *, length: int | None = None) -> bytes:
    """Decode strict unpadded base64url, optionally of an exact decoded length."""
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise EncodingError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - regex guards it
        raise EncodingError("not base64url") from exc
    if b64encode(data) != text:
        raise EncodingError("non-canonical base64url")
    if length is not None and len(data) != length:
        raise EncodingError(f"expected {length} bytes, got {len(data)}")
    return data
