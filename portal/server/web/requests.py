"""The portal's request class: body limits per endpoint, and no plaintext spooling.

Werkzeug spools large multipart file parts to temporary files. On the reporter
endpoints that take files without JavaScript, each part is instead encrypted
as it streams in (AES-256-GCM STREAM, a fresh key per file) straight into the blob
store; on every other portal endpoint file parts are dropped unread, except the
relay's outbox upload, which is ciphertext already.
"""

from __future__ import annotations

import contextlib
import io
import secrets
from dataclasses import dataclass, field
from typing import IO, Any, cast

from flask import Request, current_app

from portal.protocol.filecrypt import EncryptingWriter
from portal.server.mailboxes import attachment_blob
from portal.server.uploads import MAX_PART

SEALING_ENDPOINTS = frozenset({"reporter.submit_report", "cases.send_message"})
SPOOLING_ENDPOINTS = frozenset({"relay.upload_outbox"})


class _Discard(io.RawIOBase):
    """Accepts bytes and keeps none."""

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)

    def seek(self, *_args: Any) -> int:
        return 0

    def readinto(self, _buffer: Any) -> int:
        return 0


@dataclass
class SealedUpload:
    id: str
    filename: str
    content_type: str
    writer: EncryptingWriter
    handle: IO[bytes]
    kept: bool = False
    full: bool = False  # its limit was the portal's free space, not the size limits


@dataclass
class _Sealed:
    files: list[SealedUpload] = field(default_factory=list)
    room: int | None = None  # what is left of the storage quota, read once per request


class PortalRequest(Request):
    @property
    def max_content_length(self) -> int | None:
        config = current_app.extensions["portal"].config
        if self.endpoint == "api.upload_part":
            return MAX_PART
        if self.endpoint in SEALING_ENDPOINTS:
            return int(config.max_report_bytes + config.max_request_bytes)
        if self.endpoint in SPOOLING_ENDPOINTS:
            return int(config.max_outbox_bytes)
        return int(config.max_request_bytes)

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value

    @property
    def sealed_uploads(self) -> list[SealedUpload]:
        if not hasattr(self, "_sealed"):
            self._sealed = _Sealed()
        return self._sealed.files

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        if self.endpoint in SPOOLING_ENDPOINTS:
            return super()._get_file_stream(
                total_content_length, content_type, filename, content_length
            )
        if self.endpoint not in SEALING_ENDPOINTS:
            return cast(IO[bytes], _Discard())
        svc = current_app.extensions["portal"]
        upload_id = secrets.token_hex(16)
        path = svc.mailboxes.blobs.path(attachment_blob(upload_id))
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "wb")  # noqa: SIM115 - closed when the request ends
        # The same limits as the browser's uploads: per file, per report, and the
        # portal's storage quota, counting what this request already stored.
        used = sum(u.writer.cipher_bytes for u in self.sealed_uploads)
        if self._sealed.room is None:
            self._sealed.room = svc.uploads.room()
        room = self._sealed.room - used
        limit = min(svc.config.max_file_bytes, svc.config.max_report_bytes - used, room)
        writer = EncryptingWriter(handle, limit=max(0, limit))
        upload = SealedUpload(upload_id, filename or "", content_type or "", writer, handle)
        upload.full = room <= min(svc.config.max_file_bytes, svc.config.max_report_bytes - used)
        self.sealed_uploads.append(upload)
        return cast(IO[bytes], writer)

    def discard_unkept_uploads(self) -> None:
        """After the request: remove what was encrypted but not stored with a report."""
        blobs = current_app.extensions["portal"].mailboxes.blobs
        for upload in self.sealed_uploads:
            with contextlib.suppress(OSError):
                upload.handle.close()
            if not upload.kept:
                blobs.delete(attachment_blob(upload.id))
