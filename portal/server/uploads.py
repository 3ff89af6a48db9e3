"""Evidence-file uploads on the portal: ciphertext in numbered parts, straight to disk.

Parts are appended in order to one blob file, each written from the request
stream in small pieces (memory stays flat), fsynced, then counted. A part that
arrives out of order is refused with the number to resume from; a repeated part
is accepted as already received; a part cut short is rolled back. An upload
belongs to the session that started it until it is attached to a mailbox.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO

from sqlalchemy import Connection, Table, bindparam, case, delete, func, insert, select, update
from sqlalchemy.orm import Session
from werkzeug.exceptions import ClientDisconnected

from portal.common.blobs import BlobStore
from portal.common.db import Database, Prepared, Reader
from portal.common.errors import PortalError
from portal.server.mailboxes import Attach, attachment_blob
from portal.server.models import Attachment

_ATTACHMENTS: Table = Attachment.__table__  # type: ignore[assignment]
_CLAIMABLE = Prepared(
    select(
        _ATTACHMENTS.c.owner, _ATTACHMENTS.c.received, _ATTACHMENTS.c.parts, _ATTACHMENTS.c.size
    ).where(_ATTACHMENTS.c.id == bindparam("id"))
)


def _claimable(c: Connection | Reader, upload_id: object, owner: str) -> tuple[str, int]:
    """A finished upload of this page's (its id and size), or the reason it is not."""
    row = _CLAIMABLE.first(c, {"id": upload_id}) if isinstance(upload_id, str) else None
    if row is None or row[0] != owner:
        raise _not_this_pages()
    if row[1] != row[2]:
        raise _unfinished()
    return str(upload_id), int(row[3])


def _not_this_pages() -> UploadError:
    return UploadError("no_upload", "The report names a file that was not uploaded from this page.")


def _unfinished() -> UploadError:
    return UploadError(
        "unfinished",
        "The report names a file whose upload has not "
        "finished. Nothing was sent; please wait for it or remove it.",
    )


PIECE = 64 * 1024
MAX_PART = 16 * 1024 * 1024
# An unfinished upload whose page is gone (reloaded mid-upload, or a tab a phone
# discarded) would count against its session's limits until it expires, days
# later, and refuse the same file chosen again. One whose file has not grown for
# this long is dropped when its session starts another upload. A part writes as
# its bytes arrive, on the slowest link too, and a page waits at most 30 s
# between retries; a page sends one file at a time, so only another page of the
# session (the reloaded one, another tab) starts an upload while one is stalled.
STALLED_SECONDS = 3 * 60


class UploadError(PortalError):
    """``reason`` is stable for the browser."""


@dataclass(frozen=True)
class UploadLimits:
    max_file_bytes: int
    max_files: int
    max_total_bytes: int
    quota_bytes: int


def _full() -> UploadError:
    return UploadError(
        "full",
        "The portal has no room for this file right now. "
        "Nothing you sent is lost; please try again later.",
    )


class Uploads:
    def __init__(
        self, db: Database, blobs: BlobStore, limits: UploadLimits, today: Callable[[], dt.date]
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.limits = limits
        self.today = today

    @staticmethod
    def _stored(s: Session) -> int:
        """Bytes really held: attached files whole, unfinished uploads as far as
        they came (a size announced but never sent takes no room)."""
        attached = s.scalar(
            select(func.coalesce(func.sum(Attachment.size), 0)).where(
                Attachment.mailbox_id.is_not(None)
            )
        )
        sent = Attachment.received * Attachment.part_size
        arrived = case((sent < Attachment.size, sent), else_=Attachment.size)
        unfinished = s.scalar(
            select(func.coalesce(func.sum(arrived), 0)).where(Attachment.mailbox_id.is_(None))
        )
        return int(attached or 0) + int(unfinished or 0)

    def room(self) -> int:
        """How many more ciphertext bytes the storage quota allows."""
        with self.db.reading() as s:
            return max(0, self.limits.quota_bytes - self._stored(s))

    def start(self, owner: str, size: object, part_size: object) -> Attachment:
        """Reserve an upload of ``size`` ciphertext bytes in parts of ``part_size``."""
        if not (isinstance(size, int) and isinstance(part_size, int)):
            raise UploadError("size", "The upload must give its size and part size.")
        if size <= 0:
            raise UploadError("empty", "An empty file cannot be sent.")
        if size > self.limits.max_file_bytes:
            raise UploadError("too_large", "This file is larger than the portal accepts.")
        if not 1024 <= part_size <= MAX_PART:
            raise UploadError("part_size", "The part size is not acceptable.")
        with self.db.transaction() as s:
            open_rows = list(s.scalars(select(Attachment).where(Attachment.owner == owner)))
            stalled = [r for r in open_rows if self._stalled(r)]
            for r in stalled:
                s.delete(r)
            open_rows = [r for r in open_rows if r not in stalled]
            if len(open_rows) >= self.limits.max_files:
                raise UploadError(
                    "too_many", "You have added as many files as one report can hold."
                )
            if sum(r.size for r in open_rows) + size > self.limits.max_total_bytes:
                raise UploadError(
                    "too_large", "These files together are larger than one report can hold."
                )
            if self._stored(s) + size > self.limits.quota_bytes:
                raise _full()
            row = Attachment(
                id=secrets.token_hex(16),
                owner=owner,
                size=size,
                part_size=part_size,
                parts=-(-size // part_size),
                received=0,
                created_on=self.today(),
            )
            s.add(row)
        for r in stalled:
            with contextlib.suppress(FileNotFoundError):
                self.blobs.delete(attachment_blob(r.id))
        path = self.blobs.path(attachment_blob(row.id))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()  # its time is when the upload last moved (``_stalled``)
        return row

    def _stalled(self, row: Attachment) -> bool:
        """Unfinished, and its file unchanged for ``STALLED_SECONDS`` (an upload made
        before files were created with their row has no time: never stalled)."""
        if row.received >= row.parts:
            return False
        try:
            moved = self.blobs.path(attachment_blob(row.id)).stat().st_mtime
        except FileNotFoundError:
            return False
        return time.time() - moved > STALLED_SECONDS

    def _owned(self, s: Session, upload_id: str, owner: str) -> Attachment:
        row = s.get(Attachment, upload_id)
        if row is None or row.owner != owner:
            raise UploadError("no_upload", "This upload does not exist or is not yours.")
        return row

    def status(self, upload_id: str, owner: str) -> Attachment:
        with self.db.reading() as s:
            return self._owned(s, upload_id, owner)

    def write_part(
        self, upload_id: str, owner: str, number: int, stream: IO[bytes], length: int | None
    ) -> int:
        """Append part ``number`` from ``stream``; return how many parts are now in."""
        row = self.status(upload_id, owner)
        if number < row.received:
            return row.received  # a retry of a part that already arrived
        if number != row.received:
            raise UploadError("part_order", "Parts must arrive in order.", next=row.received)
        if number >= row.parts:
            raise UploadError("part_number", "This upload has no such part.")
        expected = min(row.part_size, row.size - number * row.part_size)
        if length != expected:
            raise UploadError("part_size", f"Part {number} must be exactly {expected} bytes.")
        if expected > self.room():  # counted as parts arrive, not as sizes are announced
            raise _full()
        path = self.blobs.path(attachment_blob(upload_id))
        start = number * row.part_size
        with open(path, "a+b") as blob:
            fcntl.flock(blob, fcntl.LOCK_EX)
            # Checked again under the lock: another request may have sent this part,
            # or the file may have been attached to a report, while this one waited.
            try:
                now = self.status(upload_id, owner)
            except UploadError:
                # Deleted meanwhile (Remove): the open above may have made the file
                # again, and nothing else would ever delete it. A row that is only
                # someone else's now keeps its file.
                with self.db.reading() as s:
                    if s.get(Attachment, upload_id) is None:
                        path.unlink(missing_ok=True)
                raise
            if number < now.received:
                return now.received
            if number != now.received:
                raise UploadError("part_order", "Parts must arrive in order.", next=now.received)
            blob.truncate(start)  # drop whatever a dropped connection left behind
            blob.seek(start)
            written = 0
            try:
                while written < expected:
                    piece = stream.read(min(PIECE, expected - written))
                    if not piece:
                        break
                    blob.write(piece)
                    written += len(piece)
                if written != expected:
                    raise UploadError("incomplete", "The part arrived incomplete; send it again.")
                blob.flush()
                os.fsync(blob.fileno())
            except BaseException as exc:
                blob.truncate(start)  # a part is all there, or not there at all
                if isinstance(exc, ClientDisconnected):
                    raise UploadError(
                        "incomplete", "The connection dropped during this part; send it again."
                    ) from exc
                if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise UploadError(
                        "full",
                        "The portal has run out of space. Your upload is "
                        "paused; nothing already sent is lost.",
                    ) from exc
                raise
        with self.db.transaction() as s:
            s.execute(
                update(Attachment)
                .where(Attachment.id == upload_id, Attachment.received == number)
                .values(received=number + 1)
            )
        return number + 1

    def cancel(self, upload_id: str, owner: str) -> None:
        """Delete an upload of this page's that no report has claimed. One statement
        checks and deletes: a claim committing between a read and a delete by id
        (PostgreSQL's READ COMMITTED allows it) would otherwise lose a stored
        report's file. The file goes only with its row."""
        files = _ATTACHMENTS.c
        with self.db.transaction() as s:
            deleted = s.execute(
                delete(_ATTACHMENTS).where(
                    files.id == upload_id, files.owner == owner, files.mailbox_id.is_(None)
                )
            )
        if deleted.rowcount != 1:  # type: ignore[attr-defined]
            raise UploadError("no_upload", "This upload does not exist or is not yours.")
        self.blobs.delete(attachment_blob(upload_id))

    def claimer(self, owner: str, upload_ids: Iterable[object]) -> Attach:
        """An ``attach`` callback that links these finished uploads to the new
        envelope's mailbox, inside the storing transaction. Each file is checked
        and hashed now, before that write queues for the writer's turn (a large
        file takes seconds to hash), and taken in the transaction only if still
        this page's and finished (two reports naming one file: one gets it)."""
        ids = list(upload_ids)
        digests: dict[str, str] = {}
        for upload_id in ids:
            with self.db.reading_rows() as c:
                upload, size = _claimable(c, upload_id, owner)
            if upload in digests:  # one file is one attachment, once
                raise _not_this_pages()
            digests[upload] = self._finished_sha256(upload, size)

        def attach(c: Connection, mailbox_id: str) -> None:
            files = _ATTACHMENTS.c
            for upload, sha256 in digests.items():
                claimed = c.execute(
                    update(_ATTACHMENTS)
                    .where(files.id == upload, files.owner == owner, files.received == files.parts)
                    .values(sha256=sha256, owner=None, mailbox_id=mailbox_id)
                )
                if claimed.rowcount != 1:
                    raise _not_this_pages()

        return attach

    def _finished_sha256(self, upload_id: str, size: int) -> str:
        """The hash of a finished upload, read while no part is being written to it
        (a part still being written means the upload has not finished, whatever its
        count said a moment ago)."""
        unfinished = _unfinished()
        with self.blobs.open(attachment_blob(upload_id)) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise unfinished from exc
            if os.fstat(handle.fileno()).st_size != size:
                raise unfinished
            digest = hashlib.sha256()
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
        return digest.hexdigest()

    def blob_sha256(self, upload_id: str) -> str:
        digest = hashlib.sha256()
        with self.blobs.open(attachment_blob(upload_id)) as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
        return digest.hexdigest()

    def add_sealed_on_server(
        self, c: Connection, upload_id: str, size: int, sha256: str, mailbox_id: str
    ) -> None:
        """Register a file the server encrypted on arrival (the no-JS path), whose
        ciphertext hashes to ``sha256`` (:meth:`blob_sha256`, taken beforehand:
        this runs in the writer's turn)."""
        c.execute(
            insert(_ATTACHMENTS).values(
                id=upload_id,
                owner=None,
                size=size,
                part_size=size or 1,
                parts=1,
                received=1,
                sha256=sha256,
                mailbox_id=mailbox_id,
                created_on=self.today(),
            )
        )

    def expire(self, days: int) -> int:
        """Delete unfinished or never-attached uploads older than ``days`` days."""
        cutoff = self.today() - dt.timedelta(days=days)
        with self.db.transaction() as s:
            rows = list(
                s.scalars(
                    select(Attachment).where(
                        Attachment.mailbox_id.is_(None), Attachment.created_on < cutoff
                    )
                )
            )
            for row in rows:
                s.delete(row)
        for row in rows:
            with contextlib.suppress(FileNotFoundError):
                self.blobs.delete(attachment_blob(row.id))
        return len(rows)
