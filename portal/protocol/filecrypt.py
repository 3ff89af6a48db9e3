"""Evidence files: libsodium secretstream (XChaCha20-Poly1305) in fixed-size chunks.

Each file has its own key. The stream header, key, chunk size and the SHA-256
of the plaintext travel inside the sealed envelope; the blob is just the chunk
ciphertexts one after another, the last one tagged FINAL. Memory stays at one
chunk whatever the file size. The browser does the same with libsodium.js.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import nacl.bindings as sodium
import nacl.exceptions

from portal.common.errors import NamedError

CHUNK = 64 * 1024
ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES  # 17
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


class DamagedFile(NamedError, ValueError):
    """The blob does not decrypt to the file that was sent: truncated, flipped or swapped."""

    REASON = "damaged"


def cipher_size(plain_size: int, chunk: int = CHUNK) -> int:
    """The blob's size for a file of ``plain_size`` bytes (an empty file is one empty chunk)."""
    chunks = max(1, -(-plain_size // chunk))
    return plain_size + chunks * ABYTES


@dataclass(frozen=True)
class FileKeys:
    key: bytes
    header: bytes


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
        self.key = sodium.crypto_secretstream_xchacha20poly1305_keygen()
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self.header = sodium.crypto_secretstream_xchacha20poly1305_init_push(self._state, self.key)
        self._pending = bytearray()
        self._sha = hashlib.sha256()
        self.size = 0
        self.cipher_bytes = 0
        self.finished = False

    def write(self, data: bytes) -> int:
        assert not self.finished
        self._sha.update(data)
        self.size += len(data)
        self._pending += data
        # Keep at least one chunk back: the last chunk must carry the FINAL tag.
        while len(self._pending) > self.chunk:
            self._emit(bytes(self._pending[: self.chunk]), TAG_MESSAGE)
            del self._pending[: self.chunk]
        return len(data)

    def _emit(self, plain: bytes, tag: int) -> None:
        c = sodium.crypto_secretstream_xchacha20poly1305_push(self._state, plain, None, tag)
        if self.limit is not None and self.cipher_bytes + len(c) > self.limit:
            self.over_limit = True
        if not self.over_limit:
            self.out.write(c)
        self.cipher_bytes += len(c)

    def finish(self) -> str:
        """Push the final chunk; return the plaintext's SHA-256 (hex)."""
        if not self.finished:
            self._emit(bytes(self._pending), TAG_FINAL)
            self._pending.clear()
            self.finished = True
        return self._sha.hexdigest()

    # Werkzeug rewinds the container when the part ends; nothing to do here.
    def seek(self, *_args: object) -> int:
        return 0

    def flush(self) -> None:
        self.out.flush()


def decrypted_chunks(
    src: BinaryIO, key: bytes, header: bytes, chunk: int = CHUNK
) -> Iterator[bytes]:
    """Yield the plaintext chunk by chunk; raise DamagedFile on any flaw.

    A stream that ends without its FINAL chunk, has bytes after it, or fails
    authentication anywhere is damaged.
    """
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    try:
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise DamagedFile("the file key or header is malformed") from exc
    final = False
    while piece := src.read(chunk + ABYTES):
        if final:
            raise DamagedFile("there are bytes after the end of the file")
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, piece, None)
        except (nacl.exceptions.CryptoError, ValueError) as exc:
            raise DamagedFile("a part of the file does not authenticate") from exc
        final = tag == TAG_FINAL
        yield plain
    if not final:
        raise DamagedFile("the file is truncated")


def verify(src: BinaryIO, key: bytes, header: bytes, sha256: str, chunk: int = CHUNK) -> int:
    """Decrypt without keeping anything; return the size if the hash matches."""
    digest, size = hashlib.sha256(), 0
    for plain in decrypted_chunks(src, key, header, chunk):
        digest.update(plain)
        size += len(plain)
    if digest.hexdigest() != sha256:
        raise DamagedFile("the file decrypts, but not to the file that was sent")
    return size
