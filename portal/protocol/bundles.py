"""Bundles: plain tar files that carry ciphertext between portal and desk (DESIGN §10).

``manifest.json`` comes first and lists every item with its id, kind, size and
SHA-256; outbox bundles add ``manifest.sig`` (Ed25519 by the desk). A reader
checks everything before anything is applied, so a bad bundle changes nothing.

Bundles are written with ``tarfile`` as plain ustar, and read by the small
strict reader below, which accepts only that: one 512-byte header per regular
file, data padded to 512 bytes, members in manifest order, nothing else.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from portal.common.atomic import atomic_writer
from portal.common.errors import NamedError

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
TYPES = ("inbox", "outbox")
CHUNK = 1024 * 1024
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
MAX_SIGNATURE_BYTES = 1024
MAX_ITEM_BYTES = 8 * 1024**3  # exclusive: ustar's 11 octal digits stop just below
MAX_ITEMS = 1_000_000
MAX_READ_BYTES = 64 * 1024 * 1024
_ITEM_NAME = re.compile(r"\A[a-z]+/[0-9a-f]{16,64}(\.json|\.bin)?\Z")
_SHA256 = re.compile(r"\A[0-9a-f]{64}\Z")
_OCTAL = re.compile(rb"\A[0-7]+\Z")
_MANIFEST_KEYS = {"v", "type", "org", "created", "items"}

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_NAME_BYTES = 100
_USTAR_MAGIC = b"ustar\x0000"  # magic "ustar\0" then version "00"
_REGULAR = (b"0", b"\x00")
_TYPE_NAMES = {
    b"1": "a hard link",
    b"2": "a symbolic link",
    b"3": "a character device",
    b"4": "a block device",
    b"5": "a directory",
    b"6": "a FIFO",
    b"7": "a contiguous file",
    b"x": "a pax extended header",
    b"g": "a pax global header",
    b"L": "a GNU long name",
    b"K": "a GNU long link name",
    b"S": "a GNU sparse file",
}


class BundleError(NamedError, ValueError):
    """A bundle that is not exactly what its manifest says; nothing was applied."""

    REASON = "bundle"


@dataclass(frozen=True)
class Item:
    """One file in a bundle, as the manifest describes it."""

    id: str
    kind: str
    name: str
    size: int
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            **self.meta,
        }


@dataclass(frozen=True)
class Manifest:
    """``extra`` holds type-specific fields: an outbox's ``seq``, an inbox's ``outbox_seq``."""

    type: str
    org: str
    created: str
    items: tuple[Item, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        doc = {
            **self.extra,
            "v": 1,
            "type": self.type,
            "org": self.org,
            "created": self.created,
            "items": [i.to_json() for i in self.items],
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


# Checks ``(manifest_bytes, signature, manifest)``; raises BundleError to refuse the bundle.
Verify = Callable[[bytes, bytes | None, Manifest], None]


# --- writing ----------------------------------------------------------------


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = 0  # no times beyond the manifest's day
    return info


def _check_writable(manifest: Manifest, manifest_bytes: bytes) -> None:
    """Raise BundleError for anything the reader would refuse or ustar cannot hold."""
    if len(manifest_bytes) > MAX_MANIFEST_BYTES:
        raise BundleError(f"the manifest is over {MAX_MANIFEST_BYTES} bytes; export fewer items")
    if len(manifest.items) > MAX_ITEMS:
        raise BundleError(f"a bundle holds at most {MAX_ITEMS} items")
    for item in manifest.items:
        if not _ITEM_NAME.match(item.name) or len(item.name) > _NAME_BYTES:
            raise BundleError(f"{item.name!r} is not a valid bundle member name")
        if item.size >= MAX_ITEM_BYTES:
            raise BundleError(f"{item.name} is 8 GiB or more, too large for a ustar bundle")


def write_bundle(
    path: Path,
    manifest: Manifest,
    open_item: Callable[[Item], BinaryIO],
    signature: bytes | None = None,
) -> None:
    """Write the manifest, its signature if any, then every item, atomically, as ustar."""
    manifest_bytes = manifest.to_bytes()
    _check_writable(manifest, manifest_bytes)
    with (
        atomic_writer(path) as out,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT) as tar,
    ):
        tar.addfile(_tarinfo(MANIFEST, len(manifest_bytes)), io.BytesIO(manifest_bytes))
        if signature is not None:
            tar.addfile(_tarinfo(SIGNATURE, len(signature)), io.BytesIO(signature))
        for item in manifest.items:
            with open_item(item) as src:
                tar.addfile(_tarinfo(item.name, item.size), src)


# --- the manifest -----------------------------------------------------------


def _valid_item(item: Item) -> bool:
    return bool(
        isinstance(item.name, str)
        and _ITEM_NAME.match(item.name)
        and isinstance(item.size, int)
        and not isinstance(item.size, bool)
        and 0 <= item.size < MAX_ITEM_BYTES
        and isinstance(item.sha256, str)
        and _SHA256.match(item.sha256)
    )


def _parse_item(raw: dict[str, Any]) -> Item:
    if not isinstance(raw, dict) or not all(
        isinstance(raw.get(k), str) for k in ("id", "kind", "name", "sha256")
    ):
        raise BundleError("a manifest item is malformed")
    meta = {k: v for k, v in raw.items() if k not in {"id", "kind", "name", "size", "sha256"}}
    item = Item(
        id=raw["id"],
        kind=raw["kind"],
        name=raw["name"],
        size=raw["size"],
        sha256=raw["sha256"],
        meta=meta,
    )
    if not _valid_item(item):
        raise BundleError(f"manifest item {item.id!r} is malformed")
    return item


def _parse_manifest(data: bytes) -> Manifest:
    try:
        doc = json.loads(data)
        if doc["v"] != 1 or doc["type"] not in TYPES:
            raise BundleError("unsupported bundle version or type")
        if len(doc["items"]) > MAX_ITEMS:
            raise BundleError(f"the manifest lists more than {MAX_ITEMS} items")
        items = [_parse_item(raw) for raw in doc["items"]]
        if len({i.name for i in items}) != len(items) or len({i.id for i in items}) != len(items):
            raise BundleError("manifest lists an item twice")
        return Manifest(
            type=doc["type"],
            org=str(doc["org"]),
            created=str(doc["created"]),
            items=tuple(items),
            extra={k: v for k, v in doc.items() if k not in _MANIFEST_KEYS},
        )
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"the manifest is malformed: {type(exc).__name__}") from exc


# --- reading: a strict ustar reader -----------------------------------------


@dataclass(frozen=True)
class _Member:
    """A regular file in the archive: its data is ``size`` bytes at ``offset``."""

    name: str
    size: int
    offset: int

    @property
    def end(self) -> int:
        """Where the next header starts: after the data, padded to a block."""
        return self.offset + -(-self.size // _BLOCK) * _BLOCK


def _octal(data: bytes, name: str, what: str) -> int:
    """Parse a NUL- or space-terminated octal header field."""
    if data[:1] and data[0] & 0x80:
        raise BundleError(f"bundle member {name!r} has a base-256 {what}; only octal is accepted")
    digits = data.split(b"\x00", 1)[0].strip(b" ")
    if not _OCTAL.match(digits):
        raise BundleError(f"bundle member {name!r} has a malformed {what} field")
    return int(digits, 8)


def _checksum(block: bytes) -> int:
    """The ustar checksum: every byte summed, the checksum field counted as spaces."""
    return sum(block[:148]) + 8 * ord(" ") + sum(block[156:])


def _parse_header(block: bytes, at: int) -> _Member:
    """Check one header block and return the regular file it describes."""
    raw_name = block[:_NAME_BYTES].split(b"\x00", 1)[0]
    name = raw_name.decode("ascii", "backslashreplace")
    if _octal(block[148:156], name, "checksum") != _checksum(block):
        raise BundleError(f"bundle member {name!r} has a corrupt header (bad checksum)")
    kind = block[156:157]
    if kind not in _REGULAR:
        what = _TYPE_NAMES.get(kind, f"of type {kind!r}")
        raise BundleError(f"bundle member {name!r} is {what}, not a regular file")
    if block[257:265] != _USTAR_MAGIC:
        raise BundleError(f"bundle member {name!r} is not in plain ustar format")
    if any(block[345:500]):
        raise BundleError(f"bundle member {name!r} uses a ustar name prefix")
    if not raw_name or not raw_name.isascii():
        raise BundleError(f"bundle member {name!r} has an empty or non-ASCII name")
    return _Member(name=name, size=_octal(block[124:136], name, "size"), offset=at + _BLOCK)


def _read_at(handle: BinaryIO, at: int, size: int) -> bytes:
    handle.seek(at)
    return handle.read(size)


def _next_member(handle: BinaryIO, at: int) -> _Member | None:
    """Read the header at ``at``: a member, or None at the end of the archive."""
    block = _read_at(handle, at, _BLOCK)
    if not block:
        return None
    if len(block) < _BLOCK:
        raise BundleError("the bundle is truncated: it ends inside a header")
    if block == _ZERO_BLOCK:
        if _read_at(handle, at + _BLOCK, _BLOCK) != _ZERO_BLOCK:
            raise BundleError("the bundle is truncated or corrupt: its end marker is incomplete")
        return None
    return _parse_header(block, at)


def _require_data(member: _Member, file_size: int) -> _Member:
    """Refuse a member whose padded data runs past the end of the file."""
    if member.end > file_size:
        raise BundleError(f"{member.name} is truncated: the bundle ends before its data does")
    return member


def _chunks(handle: BinaryIO, member: _Member) -> Iterator[bytes]:
    """Yield a member's data in chunks of at most CHUNK bytes."""
    done = 0
    while done < member.size:
        chunk = _read_at(handle, member.offset + done, min(CHUNK, member.size - done))
        if not chunk:
            raise BundleError(f"{member.name} is truncated")
        done += len(chunk)
        yield chunk


def _read_member(handle: BinaryIO, member: _Member) -> bytes:
    return b"".join(_chunks(handle, member))


class Bundle:
    """A bundle opened for reading after every item was checked against the manifest."""

    def __init__(
        self,
        handle: BinaryIO,
        manifest: Manifest,
        manifest_bytes: bytes,
        signature: bytes | None,
        members: dict[str, _Member],
    ) -> None:
        self._handle = handle
        self._members = members
        self.manifest = manifest
        self.manifest_bytes = manifest_bytes
        self.signature = signature

    def _member(self, item: Item) -> _Member:
        member = self._members.get(item.name)
        if member is None or member.size != item.size:
            raise BundleError(f"{item.name} is not in this bundle")
        return member

    def read(self, item: Item, *, max_bytes: int = MAX_READ_BYTES) -> bytes:
        """Return an item's bytes; refuse one over ``max_bytes`` (use ``stream`` for those)."""
        if item.size > max_bytes:
            raise BundleError(f"{item.name} is {item.size} bytes, over {max_bytes} to read at once")
        return _read_member(self._handle, self._member(item))

    def stream(self, item: Item) -> Iterator[bytes]:
        """Yield an item's bytes in chunks of at most CHUNK bytes."""
        return _chunks(self._handle, self._member(item))


def _read_manifest(handle: BinaryIO, file_size: int) -> tuple[bytes, int]:
    """Read the first member, a manifest of at most MAX_MANIFEST_BYTES; return it and its end."""
    first = _next_member(handle, 0)
    if first is None or first.name != MANIFEST:
        raise BundleError("the bundle does not start with its manifest")
    if first.size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{MANIFEST} is {first.size} bytes, over {MAX_MANIFEST_BYTES}")
    return _read_member(handle, _require_data(first, file_size)), first.end


def _read_signature(handle: BinaryIO, at: int, file_size: int) -> tuple[bytes | None, int]:
    """Read ``manifest.sig`` if it is the member at ``at``; return it and where items start."""
    member = _next_member(handle, at)
    if member is None or member.name != SIGNATURE:
        return None, at
    if member.size > MAX_SIGNATURE_BYTES:
        raise BundleError(f"{SIGNATURE} is {member.size} bytes, over {MAX_SIGNATURE_BYTES}")
    return _read_member(handle, _require_data(member, file_size)), member.end


def _match_items(
    handle: BinaryIO, items: Sequence[Item], at: int, file_size: int
) -> dict[str, _Member]:
    """Walk the headers from ``at`` on: exactly the manifest's items, then the end."""
    found: dict[str, _Member] = {}
    for item in items:
        member = _next_member(handle, at)
        if member is None:
            raise BundleError(
                f"the bundle's files do not match its manifest: {item.name} is missing"
            )
        if member.name != item.name:
            raise BundleError(
                "the bundle's files do not match its manifest: "
                f"found {member.name!r} where {item.name} should be"
            )
        if member.size != item.size:
            raise BundleError(f"{item.name} has the wrong size")
        found[item.name] = _require_data(member, file_size)
        at = member.end
    extra = _next_member(handle, at)
    if extra is not None:
        raise BundleError(f"bundle member {extra.name!r} is not in the manifest")
    return found


def _check_hash(handle: BinaryIO, item: Item, member: _Member) -> None:
    digest = hashlib.sha256()
    for chunk in _chunks(handle, member):
        digest.update(chunk)
    if digest.hexdigest() != item.sha256:
        raise BundleError(f"{item.name} does not match its hash")


def _check_bundle(handle: BinaryIO, expected_type: str, verify: Verify | None) -> Bundle:
    """Check the manifest, then ``verify``, then every item header, then every item's hash."""
    file_size = os.fstat(handle.fileno()).st_size
    manifest_bytes, at = _read_manifest(handle, file_size)
    manifest = _parse_manifest(manifest_bytes)
    if manifest.type != expected_type:
        raise BundleError(f"this is an {manifest.type} bundle, not an {expected_type} bundle")
    signature, at = _read_signature(handle, at, file_size)
    if verify is not None:
        verify(manifest_bytes, signature, manifest)
    members = _match_items(handle, manifest.items, at, file_size)
    for item in manifest.items:
        _check_hash(handle, item, members[item.name])
    return Bundle(handle, manifest, manifest_bytes, signature, members)


@contextmanager
def open_bundle(path: Path, expected_type: str, verify: Verify | None = None) -> Iterator[Bundle]:
    """Open a bundle and check every member against the manifest before yielding it.

    ``verify(manifest_bytes, signature, manifest)`` runs before any item is hashed.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise BundleError(f"not a readable bundle: {exc}") from exc
    with handle:
        try:
            bundle = _check_bundle(handle, expected_type, verify)
        except OSError as exc:
            raise BundleError(f"the bundle could not be read: {exc}") from exc
        yield bundle
