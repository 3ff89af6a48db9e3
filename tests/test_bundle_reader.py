"""The strict bundle reader against hostile tar files built byte by byte or by tarfile."""

from __future__ import annotations

import hashlib
import io
import json
import re
import resource
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from nacl.signing import SigningKey

from portal.desk.keystore import DeskKeys
from portal.protocol.bundles import (
    MAX_MANIFEST_BYTES,
    BundleError,
    Item,
    Manifest,
    _parse_manifest,
    open_bundle,
    write_bundle,
)
from portal.protocol.organization import Organization
from tests.harness.loop import to_portal

GiB = 1024**3
NAME = "envelopes/" + "a" * 32 + ".json"
DATA = b'{"sealed": "not really"}'


def _item(data: bytes, name: str = NAME, size: int | None = None) -> Item:
    return Item(
        id=name.split("/")[1].split(".")[0],
        kind="envelope",
        name=name,
        size=len(data) if size is None else size,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _manifest(*items: Item, type: str = "inbox", org: str = "k") -> Manifest:
    return Manifest(type=type, org=org, created="2026-01-01", items=items, extra={"seq": 1})


def _seal(block: bytearray) -> bytes:
    """Write the checksum of a header block into it."""
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def _header(
    name: str, size: int, kind: bytes = b"0", size_field: bytes | None = None, prefix: bytes = b""
) -> bytes:
    """A ustar header made by hand."""
    block = bytearray(512)
    block[0:100] = name.encode().ljust(100, b"\x00")
    block[100:108] = b"0000600\x00"
    block[108:124] = b"0000000\x00" * 2
    block[124:136] = size_field or b"%011o\x00" % size
    block[136:148] = b"00000000000\x00"
    block[156:157] = kind
    block[257:265] = b"ustar\x0000"
    block[345 : 345 + len(prefix)] = prefix
    return _seal(block)


def _member(name: str, data: bytes) -> bytes:
    return _header(name, len(data)) + data + bytes(-len(data) % 512)


def _bundle(manifest: Manifest, *members: bytes, end: bytes = bytes(1024)) -> bytes:
    return _member("manifest.json", manifest.to_bytes()) + b"".join(members) + end


def _open(path: Path, expected: str = "inbox") -> None:
    with open_bundle(path, expected):
        pass


@contextmanager
def _quick_and_small() -> Iterator[None]:
    """Fail if the block takes a second or grows peak memory by 50 MB."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    start = time.monotonic()
    yield
    assert time.monotonic() - start < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024


def _sparse(path: Path, head: bytes, total: int, tail: bytes = b"") -> Path:
    """Write ``head``, then a hole up to ``total`` bytes, then ``tail``: cheap on disk."""
    with path.open("wb") as out:
        out.write(head)
        out.truncate(total)
        out.seek(total)
        out.write(tail)
    return path


# --- the writer ----------------------------------------------------------------


def test_written_bundles_are_plain_ustar_and_read_back(tmp_path: Path) -> None:
    other = b"x" * 1500
    items = (_item(DATA), _item(other, name="blobs/" + "b" * 32))
    path = tmp_path / "b.tar"
    contents = {NAME: DATA, items[1].name: other}
    write_bundle(path, _manifest(*items), lambda i: io.BytesIO(contents[i.name]), b"s" * 64)
    raw = path.read_bytes()
    assert raw[257:265] == b"ustar\x0000" and b"PaxHeader" not in raw
    with tarfile.open(path) as tar:
        assert tar.getnames() == ["manifest.json", "manifest.sig", NAME, items[1].name]
        assert all(m.type == tarfile.REGTYPE and not m.pax_headers for m in tar.getmembers())
        assert all(m.mtime == 0 and m.mode == 0o600 for m in tar.getmembers())
    with open_bundle(path, "inbox") as bundle:
        assert bundle.signature == b"s" * 64
        assert bundle.read(items[0]) == DATA
        assert b"".join(bundle.stream(items[1])) == other
        with pytest.raises(BundleError, match="to read at once"):
            bundle.read(items[1], max_bytes=1000)


def test_an_item_of_8_gib_cannot_be_written(tmp_path: Path) -> None:
    path = tmp_path / "b.tar"
    with pytest.raises(BundleError, match="8 GiB"):
        write_bundle(path, _manifest(_item(b"", size=8 * GiB)), lambda i: io.BytesIO())
    assert not path.exists()


def test_a_bundle_without_end_blocks_is_read(tmp_path: Path) -> None:
    path = tmp_path / "b.tar"
    path.write_bytes(_bundle(_manifest(_item(DATA)), _member(NAME, DATA), end=b""))
    _open(path)


# --- huge declared sizes ---------------------------------------------------------


def test_a_1_gib_manifest_is_refused_before_it_is_read(tmp_path: Path) -> None:
    assert GiB > MAX_MANIFEST_BYTES
    path = _sparse(tmp_path / "b.tar", _header("manifest.json", GiB), 512 + GiB, bytes(1024))
    assert path.stat().st_blocks * 512 < 1024 * 1024  # the file is 1 GiB of holes
    with _quick_and_small(), pytest.raises(BundleError, match=r"manifest\.json is \d+ bytes, over"):
        _open(path)


def test_a_1_gib_manifest_header_without_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.tar"
    path.write_bytes(_header("manifest.json", GiB) + bytes(10_000))
    with _quick_and_small(), pytest.raises(BundleError, match=r"manifest\.json"):
        _open(path)


def test_a_gnu_sparse_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.tar"
    path.write_bytes(_header("manifest.json", GiB, kind=b"S") + bytes(10_000))
    with _quick_and_small(), pytest.raises(BundleError, match=r"'manifest\.json' is a GNU sparse"):
        _open(path)


def test_a_member_beyond_the_manifest_is_refused_unread(tmp_path: Path) -> None:
    extra = "envelopes/" + "f" * 32 + ".json"
    head = _bundle(_manifest(_item(DATA)), _member(NAME, DATA), _header(extra, GiB), end=b"")
    # After the extra member's 1 GiB of holes comes a broken header: never reached.
    path = _sparse(tmp_path / "b.tar", head, len(head) + GiB, b"\xff" * 512)
    with (
        _quick_and_small(),
        pytest.raises(BundleError, match=f"'{re.escape(extra)}' is not in the manifest"),
    ):
        _open(path)


def test_a_signature_over_1_kib_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.tar"
    path.write_bytes(_bundle(_manifest(), _member("manifest.sig", b"s" * 1025)))
    with pytest.raises(BundleError, match=r"manifest\.sig is 1025 bytes"):
        _open(path)


# --- member types other than regular files ----------------------------------------


def _tarfile_bundle(member: tarfile.TarInfo, fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    manifest = _manifest(_item(b"")).to_bytes()
    info = tarfile.TarInfo("manifest.json")
    info.size = len(manifest)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        tar.addfile(info, io.BytesIO(manifest))
        tar.addfile(member)
    return out.getvalue()


def _info(kind: bytes, name: str = NAME, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: _tarfile_bundle(_info(tarfile.SYMTYPE, linkname="/etc/passwd")), "symbolic link"),
        (lambda: _tarfile_bundle(_info(tarfile.LNKTYPE, linkname="manifest.json")), "hard link"),
        (lambda: _tarfile_bundle(_info(tarfile.DIRTYPE)), "directory"),
        (lambda: _tarfile_bundle(_info(tarfile.FIFOTYPE)), "FIFO"),
        (lambda: _tarfile_bundle(_info(tarfile.CHRTYPE)), "character device"),
        (lambda: _tarfile_bundle(_info(tarfile.BLKTYPE)), "block device"),
        (lambda: _bundle(_manifest(_item(b"")), _header(NAME, 0, kind=b"S")), "GNU sparse file"),
    ],
    ids=["symlink", "hardlink", "directory", "fifo", "chardev", "blockdev", "gnu-sparse"],
)
def test_members_that_are_not_regular_files_are_refused(
    tmp_path: Path, build: Callable[[], bytes], message: str
) -> None:
    path = tmp_path / "b.tar"
    path.write_bytes(build())
    with pytest.raises(
        BundleError, match=f"'{re.escape(NAME)}/?' is an? {message}, not a regular file"
    ):
        _open(path)


def test_a_pax_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.tar"
    path.write_bytes(
        _tarfile_bundle(_info(tarfile.REGTYPE, "envelopes/é.json"), tarfile.PAX_FORMAT)
    )
    with pytest.raises(BundleError, match="PaxHeader' is a pax extended header"):
        _open(path)


def test_a_pax_global_header_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"a": "b"}):
        pass
    path = tmp_path / "b.tar"
    path.write_bytes(out.getvalue())
    with pytest.raises(BundleError, match="is a pax global header"):
        _open(path)


def test_a_gnu_long_name_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_info(tarfile.REGTYPE, "manifest.json" + "/" * 120))
    path = tmp_path / "b.tar"
    path.write_bytes(out.getvalue())
    with pytest.raises(BundleError, match="LongLink' is a GNU long name"):
        _open(path)


def test_gnu_magic_and_name_prefixes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.tar"
    path.write_bytes(_tarfile_bundle(_info(tarfile.REGTYPE), tarfile.GNU_FORMAT))
    with pytest.raises(BundleError, match=r"'manifest\.json' is not in plain ustar"):
        _open(path)
    path.write_bytes(_bundle(_manifest(_item(b"")), _header(NAME, 0, prefix=b"etc")))
    with pytest.raises(BundleError, match=f"'{re.escape(NAME)}' uses a ustar name prefix"):
        _open(path)


# --- damaged archives ------------------------------------------------------------


def _good(tmp_path: Path) -> bytes:
    path = tmp_path / "good.tar"
    write_bundle(path, _manifest(_item(DATA)), lambda i: io.BytesIO(DATA))
    _open(path)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("cut", "message"),
    [(1024 + 512 + 10, "truncated: the bundle ends before"), (1024 + 100, "inside a header")],
)
def test_truncated_archives_are_refused(tmp_path: Path, cut: int, message: str) -> None:
    path = tmp_path / "b.tar"
    path.write_bytes(_good(tmp_path)[:cut])
    with pytest.raises(BundleError, match=message):
        _open(path)


def test_a_single_zero_block_then_junk_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.tar"
    path.write_bytes(_bundle(_manifest(_item(DATA)), _member(NAME, DATA), end=bytes(512) + b"x"))
    with pytest.raises(BundleError, match="end marker"):
        _open(path)


def test_a_corrupt_header_checksum_is_refused(tmp_path: Path) -> None:
    raw = bytearray(_good(tmp_path))
    raw[1024 + 20] ^= 1  # inside the item's name, checksum left as it was
    path = tmp_path / "b.tar"
    path.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="bad checksum"):
        _open(path)


def test_a_base_256_size_is_refused(tmp_path: Path) -> None:
    size = b"\x80" + len(DATA).to_bytes(11, "big")
    path = tmp_path / "b.tar"
    path.write_bytes(_bundle(_manifest(_item(DATA)), _header(NAME, 0, size_field=size) + DATA))
    with pytest.raises(BundleError, match="base-256 size"):
        _open(path)


# --- the manifest ----------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [{"size": 8 * GiB}, {"size": True}, {"size": -1}, {"sha256": "g" * 64}, {"name": "../x"}],
)
def test_malformed_manifest_items_are_refused(change: dict[str, object]) -> None:
    doc = json.loads(_manifest(_item(DATA)).to_bytes())
    doc["items"][0].update(change)
    with pytest.raises(BundleError, match="is malformed"):
        _parse_manifest(json.dumps(doc).encode())


def test_a_manifest_of_over_a_million_items_is_refused() -> None:
    data = b'{"v":1,"type":"inbox","org":"k","created":"x","items":[' + b"{}," * 1_000_000
    with pytest.raises(BundleError, match="more than 1000000 items"):
        _parse_manifest(data + b"{}]}")


# --- outboxes: the signature is checked before anything is hashed ---------------------


def _outbox(tmp_path: Path, org: Organization, key: SigningKey, item: Item, data: bytes) -> Path:
    manifest = _manifest(item, type="outbox", org=org.encrypt[0].kid)
    signature = key.sign(manifest.to_bytes()).signature
    path = tmp_path / "outbox.tar"
    write_bundle(path, manifest, lambda i: io.BytesIO(data), signature=signature)
    return path


def test_a_bad_signature_is_reported_before_a_bad_hash(
    app: Flask, tmp_path: Path, org: Organization, desk_keys: DeskKeys
) -> None:
    item = _item(b"the real reply")
    forged = _outbox(tmp_path, org, SigningKey.generate(), item, b"another reply!")
    with pytest.raises(BundleError, match="signature is not the desk's"):
        to_portal(app, forged)
    # The same bundle signed by the desk fails on the hash instead.
    signed = _outbox(tmp_path, org, desk_keys.signing, item, b"another reply!")
    with pytest.raises(BundleError, match="does not match its hash"):
        to_portal(app, signed)


def test_an_unsigned_outbox_is_refused_before_hashing(
    app: Flask, tmp_path: Path, org: Organization
) -> None:
    manifest = _manifest(_item(DATA), type="outbox", org=org.encrypt[0].kid)
    path = tmp_path / "b.tar"
    path.write_bytes(_bundle(manifest, _member(NAME, b"x" * len(DATA))))
    with pytest.raises(BundleError, match="not signed by the desk"):
        to_portal(app, path)


def test_a_huge_item_behind_a_bad_signature_is_refused_fast(
    app: Flask, tmp_path: Path, org: Organization
) -> None:
    item = _item(b"", size=4 * GiB)
    manifest = _manifest(item, type="outbox", org=org.encrypt[0].kid)
    signature = SigningKey.generate().sign(manifest.to_bytes()).signature
    head = _bundle(manifest, _member("manifest.sig", signature), _header(NAME, 4 * GiB), end=b"")
    path = _sparse(tmp_path / "b.tar", head, len(head) + 4 * GiB, bytes(1024))
    with _quick_and_small(), pytest.raises(BundleError, match="signature is not the desk's"):
        to_portal(app, path)
