"""Files posted without JavaScript, already encrypted on arrival: check and describe them."""

from __future__ import annotations

from typing import Any, cast

from flask import request
from flask_babel import gettext
from sqlalchemy import Connection

from portal.common.errors import NamedError
from portal.server.mailboxes import Attach
from portal.server.uploads import Uploads
from portal.server.web.errors import public_message
from portal.server.web.requests import PortalRequest, SealedUpload
from portal.server.web.services import services


class FileProblem(NamedError, ValueError):
    """A posted file the portal will not keep; the message is for the reporter."""

    REASON = "file"


def chosen() -> bool:
    """Whether this request carried any file (an empty "no file chosen" part aside)."""
    uploads = cast(PortalRequest, request).sealed_uploads
    return any(u.filename or u.writer.size for u in uploads)


def finished_uploads() -> list[SealedUpload]:
    """Finish every file of this request; drop the empty part of "no file chosen"."""
    config = services().config
    uploads = cast(PortalRequest, request).sealed_uploads
    kept = []
    for upload in uploads:
        upload.writer.finish()
        upload.handle.close()
        if not upload.filename and upload.writer.size == 0:
            continue
        if upload.writer.size == 0:
            raise FileProblem(gettext("The file “%(name)s” is empty.", name=upload.filename))
        if upload.writer.over_limit and upload.full:
            raise FileProblem(public_message("full"))
        if upload.writer.over_limit:
            too_large = gettext("The file “%(name)s” is larger than the portal accepts.")
            raise FileProblem(too_large % {"name": upload.filename})
        kept.append(upload)
    if len(kept) > config.max_files:
        raise FileProblem(
            gettext("One report can hold at most %(count)s files.", count=config.max_files)
        )
    return kept


def attachment_entry(upload: SealedUpload) -> dict[str, Any]:
    """What the desk needs to decrypt and check the file; sealed inside the envelope."""
    return {
        "upload": upload.id,
        "name": upload.filename,
        "type": upload.content_type,
        "size": upload.writer.size,
        **upload.writer.finish().entry(),
        "metadata_removed": False,
    }


def register(uploads: Uploads, files: list[SealedUpload]) -> Attach:
    """An ``attach`` callback that records the files with the new envelope. Their
    ciphertext is hashed now, before the write that stores them waits for its turn."""
    digests = [uploads.blob_sha256(upload.id) for upload in files]

    def attach(c: Connection, mailbox_id: str) -> None:
        for upload, sha256 in zip(files, digests, strict=True):
            size = upload.writer.cipher_bytes
            uploads.add_sealed_on_server(c, upload.id, size, sha256, mailbox_id)

    return attach


def keep(files: list[SealedUpload]) -> None:
    for upload in files:
        upload.kept = True
