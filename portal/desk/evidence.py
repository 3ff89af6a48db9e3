"""Evidence files on the desk: verify against the sealed hash, read, save.

A file is "verified" only when its blob decrypts completely (every chunk
authentic, FINAL at the end) to bytes whose SHA-256 is the one sealed in the
report; otherwise it is "damaged" (or "missing" if its blob has not arrived),
and it is never offered or written out as if it were good.
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
from portal.desk.store import DeskStore
from portal.protocol.encoding import EncodingError, b64decode
from portal.protocol.filecrypt import DamagedFile, decrypted_chunks, verify

STATES = ("verified", "damaged", "missing")


@dataclass(frozen=True)
class CaseFile:
    upload: str
    name: str
    type: str
    size: int
    sha256: str
    metadata_removed: bool
    key: bytes
    header: bytes
    chunk: int
    case: str = ""  # the case whose envelope describes it

    def public(self, state: str) -> dict[str, Any]:
        return {
            "upload": self.upload,
            "name": self.name,
            "type": self.type,
            "size": self.size,
            "sha256": self.sha256,
            "metadata_removed": self.metadata_removed,
            "state": state,
        }


# Chunk sizes a sender may name: a hostile one must not make the desk read a
# whole file (or more than memory) as one chunk.
MIN_CHUNK, MAX_CHUNK = 1024, 16 * 1024 * 1024
MAX_FILE_SIZE = 1 << 40


def files_of(content: dict[str, Any], case: str = "") -> list[CaseFile]:
    """The files an opened envelope of ``case`` describes (malformed entries are skipped)."""
    out = []
    for entry in content.get("attachments") or []:
        try:
            if not (
                MIN_CHUNK <= int(entry["chunk"]) <= MAX_CHUNK
                and 0 <= int(entry["size"]) <= MAX_FILE_SIZE
            ):
                continue
            out.append(
                CaseFile(
                    upload=str(entry["upload"]),
                    name=str(entry.get("name") or ""),
                    type=str(entry.get("type") or ""),
                    size=int(entry["size"]),
                    sha256=str(entry["sha256"]),
                    metadata_removed=bool(entry.get("metadata_removed")),
                    key=b64decode(entry["key"], length=32),
                    header=b64decode(entry["header"], length=24),
                    chunk=int(entry["chunk"]),
                    case=case,
                )
            )
        except (KeyError, TypeError, ValueError, EncodingError):
            continue
    return out


def _verifies(store: DeskStore, blob: str, f: CaseFile) -> bool:
    try:
        with store.blobs.open(blob) as src:
            return verify(src, f.key, f.header, f.sha256, f.chunk) == f.size
    except (FileNotFoundError, DamagedFile):
        return False


def locate(store: DeskStore, f: CaseFile) -> str | None:
    """The blob holding exactly the file its case's envelope describes, if any."""
    for row in store.attachments(f.upload, f.case):
        blob = f"attachments/{row.sha256}"
        if _verifies(store, blob, f):
            return blob
    return None


def check(store: DeskStore, f: CaseFile) -> str:
    """verified, damaged or missing. Checked every time, never remembered: a blob
    changed after an earlier check must not keep a "verified" it no longer earns."""
    kept = [f"attachments/{row.sha256}" for row in store.attachments(f.upload, f.case)]
    if not any(store.blobs.path(blob).exists() for blob in kept):
        return "missing"
    return "verified" if locate(store, f) is not None else "damaged"


def plaintext(store: DeskStore, f: CaseFile) -> Iterator[bytes]:
    """The file's bytes, chunk by chunk; raises DamagedFile if no kept copy verifies."""
    blob = locate(store, f)
    if blob is None:
        raise DamagedFile("no kept copy of this file verifies")
    with store.blobs.open(blob) as src:
        yield from decrypted_chunks(src, f.key, f.header, f.chunk)


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def safe_name(name: str, taken: set[str], fallback: str) -> str:
    """A file name that cannot climb out of the folder or hide its extension: no
    bidi, zero-width or control characters, no path, no characters Windows refuses."""
    name = unicodedata.normalize("NFC", Path(clean_name(name).replace("\\", "/")).name)
    name = _UNSAFE.sub("_", name).strip(" .") or fallback
    stem, dot, ext = name[:120].rpartition(".")
    base, suffix = (stem, dot + ext) if dot else (name[:120], "")
    candidate, n = base + suffix, 2
    while candidate.lower() in taken:
        candidate, n = f"{base} ({n}){suffix}", n + 1
    taken.add(candidate.lower())
    return candidate


@dataclass(frozen=True)
class SaveResult:
    saved: list[tuple[str, str]]  # (file name, sha256)
    damaged: list[str]
    missing: list[str]


def save_files(store: DeskStore, case_id: str, files: list[CaseFile], out: Path) -> SaveResult:
    """Write verified originals into ``out`` with a SHA256SUMS manifest.

    Each file is decrypted to a temporary name, hashed on the way, and renamed
    only if it matches; anything else is removed and reported.
    """
    out.mkdir(parents=True, exist_ok=True)
    taken = {p.name.lower() for p in out.iterdir()}
    saved: list[tuple[str, str]] = []
    damaged: list[str] = []
    missing: list[str] = []
    for index, f in enumerate(files, start=1):
        state = check(store, f)
        if state != "verified":
            (missing if state == "missing" else damaged).append(f.name or f.upload)
            continue
        name = safe_name(f.name, taken, f"file-{index}")
        tmp = out / f".{name}.part"
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as handle:
                for chunk in plaintext(store, f):
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            if digest.hexdigest() != f.sha256:
                raise DamagedFile("hash changed while saving")
            os.replace(tmp, out / name)
        except DamagedFile:
            damaged.append(f.name or f.upload)
            continue
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        saved.append((name, f.sha256))
    sums = "".join(f"{sha}  {name}\n" for name, sha in saved)
    if saved:
        atomic_write(out / "SHA256SUMS", sums.encode(), 0o644)
        fsync_dir(out)
    store.custody.append(
        "save",
        case=case_id,
        folder=str(out),
        files=[{"name": n, "sha256": h} for n, h in saved],
        damaged=damaged,
        missing=missing,
    )
    return SaveResult(saved=saved, damaged=damaged, missing=missing)
