"""Bundles: plain tar files that carry ciphertext between portal and desk (DESIGN §10).

``manifest.json`` comes first and lists every item with its id, kind, size and
SHA-256; outbox bundles add ``manifest.sig`` (Ed25519 by the desk). A reader
checks everything before anything is applied, so a bad bundle changes nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .files import atomic_writer

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
TYPES = ("inbox", "outbox")
_ITEM_NAME = re.compile(r"\A[a-z]+/[0-9a-f]{16,64}(\.json|\.bin)?\Z")
_MANIFEST_KEYS = {"v", "type", "org", "created", "items"}
CHUNK = 1024 * 1024


class BundleError(ValueError):
    """A bundle that is not exactly what its manifest says; nothing was applied."""


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


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = 0  # no times beyond the manifest's day
    return info


def write_bundle(
    path: Path,
    manifest: Manifest,
    open_item: Callable[[Item], BinaryIO],
    signature: bytes | None = None,
) -> None:
    """Write the manifest, its signature if any, then every item, atomically."""
    manifest_bytes = manifest.to_bytes()
    with atomic_writer(path) as out, tarfile.open(fileobj=out, mode="w|") as tar:
        tar.addfile(_tarinfo(MANIFEST, len(manifest_bytes)), io.BytesIO(manifest_bytes))
        if signature is not None:
            tar.addfile(_tarinfo(SIGNATURE, len(signature)), io.BytesIO(signature))
        for item in manifest.items:
            with open_item(item) as src:
                tar.addfile(_tarinfo(item.name, item.size), src)


def _parse_manifest(data: bytes) -> Manifest:
    try:
        doc = json.loads(data)
        if doc["v"] != 1 or doc["type"] not in TYPES:
            raise BundleError("unsupported bundle version or type")
        items = []
        for raw in doc["items"]:
            meta = {
                k: v for k, v in raw.items() if k not in {"id", "kind", "name", "size", "sha256"}
            }
            item = Item(
                id=raw["id"],
                kind=raw["kind"],
                name=raw["name"],
                size=raw["size"],
                sha256=raw["sha256"],
                meta=meta,
            )
            if not (
                _ITEM_NAME.match(item.name)
                and isinstance(item.size, int)
                and item.size >= 0
                and isinstance(item.sha256, str)
                and len(item.sha256) == 64
            ):
                raise BundleError(f"manifest item {item.id!r} is malformed")
            items.append(item)
        if len({i.name for i in items}) != len(items) or len({i.id for i in items}) != len(items):
            raise BundleError("manifest lists an item twice")
        return Manifest(
            type=doc["type"],
            org=str(doc["org"]),
            created=str(doc["created"]),
            items=tuple(items),
            extra={k: v for k, v in doc.items() if k not in _MANIFEST_KEYS},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"the manifest is malformed: {exc}") from exc


class Bundle:
    """A bundle opened for reading after every item was checked against the manifest."""

    def __init__(
        self,
        tar: tarfile.TarFile,
        manifest: Manifest,
        manifest_bytes: bytes,
        signature: bytes | None,
    ) -> None:
        self._tar = tar
        self.manifest = manifest
        self.manifest_bytes = manifest_bytes
        self.signature = signature

    def read(self, item: Item) -> bytes:
        member = self._tar.extractfile(item.name)
        if member is None:  # pragma: no cover - checked on open
            raise BundleError(f"{item.name} is missing")
        return member.read()

    def stream(self, item: Item) -> Iterator[bytes]:
        member = self._tar.extractfile(item.name)
        if member is None:  # pragma: no cover - checked on open
            raise BundleError(f"{item.name} is missing")
        while chunk := member.read(CHUNK):
            yield chunk


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:
        raise BundleError(f"{member.name} is not a regular file")
    return handle.read()


@contextmanager
def open_bundle(path: Path, expected_type: str) -> Iterator[Bundle]:
    """Open a bundle and check every member against the manifest before yielding it."""
    try:
        tar = tarfile.open(path, mode="r:")  # noqa: SIM115 - closed by the with below
    except (OSError, tarfile.TarError) as exc:
        raise BundleError(f"not a readable bundle: {exc}") from exc
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, EOFError) as exc:
            raise BundleError(f"the bundle is truncated or corrupt: {exc}") from exc
        if not members or members[0].name != MANIFEST or not members[0].isfile():
            raise BundleError("the bundle does not start with its manifest")
        manifest_bytes = _read_member(tar, members[0])
        manifest = _parse_manifest(manifest_bytes)
        if manifest.type != expected_type:
            raise BundleError(f"this is an {manifest.type} bundle, not an {expected_type} bundle")
        rest = members[1:]
        signature = None
        if rest and rest[0].name == SIGNATURE:
            signature = _read_member(tar, rest[0])
            rest = rest[1:]
        _check_members(tar, manifest.items, rest)
        yield Bundle(tar, manifest, manifest_bytes, signature)


def _check_members(
    tar: tarfile.TarFile, items: Iterable[Item], members: list[tarfile.TarInfo]
) -> None:
    expected = list(items)
    if [m.name for m in members] != [i.name for i in expected]:
        raise BundleError("the bundle's files do not match its manifest")
    for item, member in zip(expected, members, strict=True):
        if not member.isfile() or member.size != item.size:
            raise BundleError(f"{item.name} has the wrong size")
        handle = tar.extractfile(member)
        if handle is None:
            raise BundleError(f"{item.name} is not a regular file")
        digest = hashlib.sha256()
        try:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BundleError(f"{item.name} is truncated: {exc}") from exc
        if digest.hexdigest() != item.sha256:
            raise BundleError(f"{item.name} does not match its hash")
