"""Evidence-file encryption: round trips, sizes, and every kind of damage."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from portal.protocol.filecrypt import (
    CHUNK,
    DamagedFile,
    EncryptingWriter,
    cipher_size,
    decrypted_chunks,
    verify,
)


def _encrypt(data: bytes, pieces: int = 7) -> tuple[bytes, EncryptingWriter, str]:
    out = io.BytesIO()
    writer = EncryptingWriter(out)
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        writer.write(data[i : i + step])
    digest = writer.finish()
    return out.getvalue(), writer, digest


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
def test_round_trip_and_sizes(size: int) -> None:
    data = os.urandom(size)
    blob, writer, digest = _encrypt(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert len(blob) == cipher_size(size) == writer.cipher_bytes
    plain = b"".join(decrypted_chunks(io.BytesIO(blob), writer.key, writer.header))
    assert plain == data
    assert verify(io.BytesIO(blob), writer.key, writer.header, digest) == size


@pytest.mark.parametrize("damage", ["flip", "truncate", "drop-final", "append", "swap"])
def test_damage_is_detected(damage: str) -> None:
    data = os.urandom(3 * CHUNK + 100)
    blob, writer, digest = _encrypt(data)
    whole = CHUNK + 17
    if damage == "flip":
        blob = blob[:100] + bytes([blob[100] ^ 1]) + blob[101:]
    elif damage == "truncate":
        blob = blob[:-5]
    elif damage == "drop-final":
        blob = blob[: 3 * whole]
    elif damage == "append":
        blob = blob + blob[:whole]
    else:
        blob = blob[whole : 2 * whole] + blob[:whole] + blob[2 * whole :]
    with pytest.raises(DamagedFile):
        verify(io.BytesIO(blob), writer.key, writer.header, digest)


def test_a_wrong_hash_is_damage() -> None:
    blob, writer, _ = _encrypt(b"evidence")
    with pytest.raises(DamagedFile, match="not to the file that was sent"):
        verify(io.BytesIO(blob), writer.key, writer.header, "0" * 64)
