"""Evidence files: AES-256-GCM in the STREAM construction, in fixed-size chunks.

Each file has its own 32-byte key and a random 7-byte nonce prefix. Chunk ``i``
(``chunk`` bytes of plaintext, the last one shorter or empty) is sealed with
AES-256-GCM under the nonce ``prefix ‖ i (4 bytes, big-endian) ‖ last (1 byte:
1 on the last chunk, else 0)``, so chunks cannot be reordered, dropped,
repeated or cut short without failing to open (the STREAM construction of
Hoang, Reyhanitabar, Rogaway and Vizár, as in age and Tink). The blob is the
sealed chunks back to back: each is its ciphertext and its 16-byte tag.

Why AES-GCM: the browser's own WebCrypto does it natively at every Tor Browser
level, where libsodium's XChaCha20 ran in interpreted JavaScript at 0.4 MiB/s.

The envelope seals, for each file: the key, the prefix, the chunk size and the
*chunk digest*, SHA-256 over the SHA-256 of every plaintext chunk in order
(WebCrypto hashes only whole buffers, so the browser hashes chunk by chunk).
The desk recomputes it from what it decrypts, which proves the file is exactly
what the reporter's browser read, and shows the plain SHA-256 of the whole file
as well. The browser twin is ``static/src/protocol/filecrypt.js``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from portal.common.errors import NamedError
from portal.protocol.encoding import EncodingError, b64decode, b64encode

ALG = "aes256gcm-stream"
CHUNK = 256 * 1024
TAG = 16
KEY_BYTES = 32
PREFIX_BYTES = 7
MAX_CHUNKS = 2**32
# Chunk sizes an entry may name: a hostile one must not make a reader take a whole
# file (or more than memory) as one chunk.
MIN_CHUNK, MAX_CHUNK = 1024, 16 * 1024 * 1024


class DamagedFile(NamedError, ValueError):
    """The blob does not decrypt to the file that was sent: truncated, flipped or swapped."""

    REASON = "damaged"


def cipher_size(plain_size: int, chunk: int = CHUNK) -> int:
    """The blob's size for a file of ``plain_size`` bytes (an empty file is one empty chunk)."""
    chunks = max(1, -(-plain_size // chunk))
    return plain_size + chunks * TAG


def nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    """The 12-byte nonce of chunk ``counter``."""
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def seal_chunk(key: bytes, prefix: bytes, counter: int, last: bool, plain: bytes) -> bytes:
    return AESGCM(key).encrypt(nonce(prefix, counter, last), plain, None)


def chunk_digest(chunk_hashes: list[bytes]) -> str:
    """SHA-256 over the chunks' SHA-256s, in order (hex): what the envelope seals."""
    return hashlib.sha256(b"".join(chunk_hashes)).hexdigest()


@dataclass(frozen=True)
class FileSeal:
    """What the envelope carries about one file's encryption."""

    key: bytes
    prefix: bytes
    chunk: int
    digest: str  # chunk_digest of the plaintext, hex

    def entry(self) -> dict[str, Any]:
        """The fields of an envelope's attachment entry (besides name, type, size)."""
        return {
            "alg": ALG,
            "key": b64encode(self.key),
            "prefix": b64encode(self.prefix),
            "chunk": self.chunk,
            "digest": self.digest,
        }

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> FileSeal:
        """Read an entry; raise DamagedFile if it is not one this code can open."""
        try:
            if entry["alg"] != ALG:
                raise DamagedFile(f"unknown file encryption {entry['alg']!r}")
            digest = str(entry["digest"])
            if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
                raise DamagedFile("the file's digest is malformed")
            chunk = entry["chunk"]
            if type(chunk) is not int or not MIN_CHUNK <= chunk <= MAX_CHUNK:
                raise DamagedFile("the file's chunk size is not one this code reads")
            return cls(
                key=b64decode(entry["key"], length=KEY_BYTES),
                prefix=b64decode(entry["prefix"], length=PREFIX_BYTES),
                chunk=chunk,
                digest=digest,
            )
        except (KeyError, TypeError, ValueError, EncodingError) as exc:
            if isinstance(exc, DamagedFile):
                raise
            raise DamagedFile("the file's entry is malformed") from exc


class EncryptingWriter:
    """A write-only file that encrypts into ``out`` as bytes arrive.

    Werkzeug's multipart parser writes uploads into it directly (the no-JS
    path), so no plaintext byte is ever spooled to a temporary file.
    """

    def __init__(self, out: BinaryIO, chunk: int = CHUNK, limit: int | None = None) -> None:
        self.out = out
        self.chunk = chunk
        # Beyond ``limit`` ciphertext bytes nothing more is written: ``over_limit``
        # says so, and the caller refuses the file (its bytes so far are deleted).
        self.limit = limit
        self.over_limit = False
        self.key = secrets.token_bytes(KEY_BYTES)
        self.prefix = secrets.token_bytes(PREFIX_BYTES)
        self._aead = AESGCM(self.key)
        self._pending = bytearray()
        self._hashes: list[bytes] = []
        self._counter = 0
        self.size = 0
        self.cipher_bytes = 0
        self.finished = False
        self._digest = ""

    def write(self, data: bytes) -> int:
        assert not self.finished
        self.size += len(data)
        self._pending += data
        # Keep at least one chunk back: the last chunk is sealed as the last.
        while len(self._pending) > self.chunk:
            self._emit(bytes(self._pending[: self.chunk]), last=False)
            del self._pending[: self.chunk]
        return len(data)

    def _emit(self, plain: bytes, last: bool) -> None:
        self._hashes.append(hashlib.sha256(plain).digest())
        c = self._aead.encrypt(nonce(self.prefix, self._counter, last), plain, None)
        self._counter += 1
        if self.limit is not None and self.cipher_bytes + len(c) > self.limit:
            self.over_limit = True
        if not self.over_limit:
            self.out.write(c)
        self.cipher_bytes += len(c)

    def finish(self) -> FileSeal:
        """Seal the last chunk; return what the envelope must carry."""
        if not self.finished:
            self._emit(bytes(self._pending), last=True)
            self._pending.clear()
            self.finished = True
            self._digest = chunk_digest(self._hashes)
        return FileSeal(self.key, self.prefix, self.chunk, self._digest)

    # Werkzeug rewinds the container when the part ends; nothing to do here.
    def seek(self, *_args: object) -> int:
        return 0

    def flush(self) -> None:
        self.out.flush()


def decrypted_chunks(src: BinaryIO, seal: FileSeal) -> Iterator[bytes]:
    """Yield the plaintext chunk by chunk; raise DamagedFile on any flaw.

    A stream that ends without its last chunk, has bytes after it, or fails
    authentication anywhere is damaged. (The chunk digest is checked by
    ``verify``; a caller streaming plaintext out checks it at the end too.)
    """
    if not MIN_CHUNK <= seal.chunk <= MAX_CHUNK:
        raise DamagedFile("the file's chunk size is not one this code reads")
    aead = AESGCM(seal.key)
    counter = 0
    piece = src.read(seal.chunk + TAG)
    while True:
        if counter >= MAX_CHUNKS:
            raise DamagedFile("the file has more chunks than the format allows")
        following = src.read(seal.chunk + TAG) if len(piece) == seal.chunk + TAG else b""
        last = not following
        if len(piece) < TAG:
            raise DamagedFile("the file is truncated")
        try:
            plain = aead.decrypt(nonce(seal.prefix, counter, last), piece, None)
        except InvalidTag as exc:
            raise DamagedFile("a part of the file does not authenticate") from exc
        yield plain
        if last:
            if src.read(1):
                raise DamagedFile("there are bytes after the end of the file")
            return
        counter += 1
        piece = following


@dataclass(frozen=True)
class Verified:
    size: int
    sha256: str  # of the whole plaintext, hex: what the desk shows


def verify(src: BinaryIO, seal: FileSeal) -> Verified:
    """Decrypt without keeping anything; the plaintext's size and SHA-256 if every
    chunk opens in order and the chunk digest is the sealed one."""
    whole, size = hashlib.sha256(), 0
    hashes: list[bytes] = []
    for plain in decrypted_chunks(src, seal):
        whole.update(plain)
        hashes.append(hashlib.sha256(plain).digest())
        size += len(plain)
    if chunk_digest(hashes) != seal.digest:
        raise DamagedFile("the file decrypts, but not to the file that was sent")
    return Verified(size=size, sha256=whole.hexdigest())
