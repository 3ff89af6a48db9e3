"""Evidence files on the desk: verify against the sealed digest, read, save.

A file is "verified" only when its blob decrypts completely (every chunk
authentic and in order, the last sealed as last) to bytes of the sealed size
whose chunk digest is the one sealed in the report; otherwise it is "damaged"
(or "missing" if its blob has not arrived), and it is never offered or written
out as if it were good. The desk shows the plain SHA-256 it computes itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portal.common.atomic import atomic_write, fsync_dir
from portal.common.safe_text import clean_name
from portal.desk import viewing
from portal.desk.names import case_name
from portal.desk.store import DeskStore, FileFacts
from portal.protocol.filecrypt import DamagedFile, FileSeal, Verified, decrypted_chunks, verify

STATES = ("verified", "damaged", "missing")


@dataclass(frozen=True)
class CaseFile:
    upload: str
    name: str
    type: str
    size: int
    metadata_removed: bool
    seal: FileSeal  # key, nonce prefix, chunk size and chunk digest, from the envelope
    case: str = ""  # the case whose envelope describes it
    item: int = 0  # the position (from 1) of that envelope in its case


@dataclass(frozen=True)
class Checked:
    """A file's state now, and the SHA-256 of its plaintext when it verified."""

    state: str  # one of STATES
    sha256: str | None = None
    blob: str | None = None  # the kept copy that verified (read it, not another)


def public(f: CaseFile, checked: Checked, location: bool | None = None) -> dict[str, Any]:
    """What the desk shows of a file (never its key). ``location``: whether the
    desk found location metadata still in it (None: not an image it checks)."""
    return {
        "download_name": download_name(f.case, f.item, f.name),
        "held_back": viewing.held_back(f.type),
        "viewable": f.type in viewing.SANITISABLE,
        "location": location,
        "upload": f.upload,
        "name": f.name,
        "type": f.type,
        "size": f.size,
        "sha256": checked.sha256,
        "metadata_removed": f.metadata_removed,
        "state": checked.state,
    }


MAX_FILE_SIZE = 1 << 40


def files_of(content: dict[str, Any], case: str = "") -> list[CaseFile]:
    """The files an opened envelope of ``case`` describes (malformed entries are skipped)."""
    out = []
    for entry in content.get("attachments") or []:
        try:
            seal = FileSeal.from_entry(entry)  # refuses a hostile chunk size
            size = entry["size"]
            if type(size) is not int or not 0 <= size <= MAX_FILE_SIZE:
                continue
            out.append(
                CaseFile(
                    upload=str(entry["upload"]),
                    name=str(entry.get("name") or ""),
                    type=str(entry.get("type") or ""),
                    size=size,
                    metadata_removed=bool(entry.get("metadata_removed")),
                    seal=seal,
                    case=case,
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return out


def verified(store: DeskStore, blob: str, f: CaseFile) -> Verified | None:
    """The blob's plaintext size and SHA-256 if it is exactly the described file."""
    try:
        with store.blobs.open(blob) as src:
            result = verify(src, f.seal)
    except (FileNotFoundError, DamagedFile):
        return None
    return result if result.size == f.size else None


def find_verified(store: DeskStore, f: CaseFile) -> tuple[str, Verified] | None:
    """The blob holding exactly the file its case's envelope describes, if any, with
    its plaintext's size and SHA-256."""
    for row in store.attachments(f.upload, f.case):
        blob = f"attachments/{row.sha256}"
        result = verified(store, blob, f)
        if result is not None:
            return blob, result
    return None


def locate(store: DeskStore, f: CaseFile) -> str | None:
    """The name of the blob holding exactly the described file, if any."""
    found = find_verified(store, f)
    return None if found is None else found[0]


def check(store: DeskStore, f: CaseFile) -> Checked:
    """verified, damaged or missing. Checked every time, never remembered: a blob
    changed after an earlier check must not keep a "verified" it no longer earns."""
    kept = [f"attachments/{row.sha256}" for row in store.attachments(f.upload, f.case)]
    if not any(store.blobs.path(blob).exists() for blob in kept):
        return Checked("missing")
    found = find_verified(store, f)
    if found is None:
        return Checked("damaged")
    return Checked("verified", found[1].sha256, found[0])


def plaintext(store: DeskStore, f: CaseFile, blob: str | None = None) -> Iterator[bytes]:
    """The file's bytes, chunk by chunk, from ``blob`` (the copy ``check`` just
    verified) or else the first kept copy that verifies; raises DamagedFile if none
    does. Every chunk is still authenticated as it is read, so a copy changed since
    its check stops the stream. (Whoever keeps these bytes checks their SHA-256
    against ``check``'s at the end.)"""
    if blob is None:
        found = find_verified(store, f)
        if found is None:
            raise DamagedFile("no kept copy of this file verifies")
        blob = found[0]
    with store.blobs.open(blob) as src:
        yield from decrypted_chunks(src, f.seal)


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def _fit(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, cut between characters (file systems count
    bytes: 120 emoji would be 480 and too long for a name)."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def safe_name(name: str, taken: set[str], fallback: str) -> str:
    """A file name that cannot climb out of the folder or hide its extension: no
    bidi, zero-width or control characters, no path, no characters Windows refuses."""
    name = unicodedata.normalize("NFC", Path(clean_name(name).replace("\\", "/")).name)
    name = _UNSAFE.sub("_", name).strip(" .") or fallback
    stem, dot, ext = name.rpartition(".")
    base, suffix = (stem, dot + _fit(ext, 16)) if dot and stem else (name, "")
    base = _fit(base, 120 - len(suffix.encode())) or fallback
    candidate, n = base + suffix, 2
    while candidate.lower() in taken:
        candidate, n = f"{base} ({n}){suffix}", n + 1
    taken.add(candidate.lower())
    return candidate


def download_name(case: str, item: int, name: str) -> str:
    """A download's name that no other file of any case shares: the case's name,
    the item's number and the file's position-free cleaned name (``photo.jpg`` of
    two cases, or of two items, never collide in a Downloads folder)."""
    cleaned = safe_name(name, set(), "file")
    return f"{case_name(case) if case else 'case'}_item{item}_{cleaned}"


def location_flag(store: DeskStore, f: CaseFile, checked: Checked) -> bool | None:
    """Whether a verified image still carries location metadata (its plaintext is
    read in a sandboxed child, once; the answer is kept by the file's hash)."""
    sha256 = checked.sha256
    if f.type not in viewing.SANITISABLE or checked.state != "verified" or sha256 is None:
        return None
    with store.db.reading() as s:
        known = s.get(FileFacts, sha256)
    if known is not None:
        return known.location
    try:
        found = viewing.location_of(picture(store, f, checked.blob))
    except (viewing.UnsafeImage, DamagedFile):
        return None
    remember_location(store, sha256, found)
    return found


def picture(store: DeskStore, f: CaseFile, blob: str | None = None) -> bytes:
    """A verified picture's bytes for the viewer, refused by its sealed size before
    anything is decrypted when it is larger than the viewer would take."""
    if f.size > viewing.MAX_INPUT_BYTES:
        raise viewing.UnsafeImage(viewing.TOO_LARGE)
    return b"".join(plaintext(store, f, blob))


def remember_location(store: DeskStore, sha256: str, location: bool) -> None:
    with store.db.transaction() as s:
        s.merge(FileFacts(sha256=sha256, location=location))


@dataclass(frozen=True)
class SaveResult:
    saved: list[tuple[str, str]]  # (file name, sha256)
    damaged: list[str]
    missing: list[str]


def save_files(
    store: DeskStore, case_id: str, files: list[CaseFile], out: Path, by: str
) -> SaveResult:
    """Write verified originals into ``out`` with a SHA256SUMS manifest.

    Each file is decrypted to a temporary name, hashed on the way, and renamed
    only if it matches; anything else is removed and reported.
    """
    with store.changing():
        return _save(store, case_id, files, out, by)


def _save(store: DeskStore, case_id: str, files: list[CaseFile], out: Path, by: str) -> SaveResult:
    out.mkdir(parents=True, exist_ok=True)
    taken = {p.name.lower() for p in out.iterdir()}
    saved: list[tuple[str, str]] = []
    damaged: list[str] = []
    missing: list[str] = []
    for index, f in enumerate(files, start=1):
        checked = check(store, f)
        if checked.state != "verified" or checked.sha256 is None:
            (missing if checked.state == "missing" else damaged).append(f.name or f.upload)
            continue
        name = safe_name(f.name, taken, f"file-{index}")
        tmp = out / f".{name}.part"
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as handle:
                for chunk in plaintext(store, f, checked.blob):
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            if digest.hexdigest() != checked.sha256:
                raise DamagedFile("hash changed while saving")
            os.replace(tmp, out / name)
        except DamagedFile:
            damaged.append(f.name or f.upload)
            continue
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        saved.append((name, checked.sha256))
    sums = "".join(f"{sha}  {name}\n" for name, sha in saved)
    if saved:
        atomic_write(out / "SHA256SUMS", sums.encode(), 0o644)
        fsync_dir(out)
    store.custody.append(
        "save",
        by,
        case=case_id,
        folder=out.name,  # its name only: the path would travel in case files
        files=[{"name": n, "sha256": h} for n, h in saved],
        damaged=damaged,
        missing=missing,
    )
    return SaveResult(saved=saved, damaged=damaged, missing=missing)
