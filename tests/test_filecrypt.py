"""Evidence-file encryption: round trips, sizes, and every kind of damage."""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import replace

import pytest

from portal.protocol.filecrypt import (
    CHUNK,
    TAG,
    DamagedFile,
    EncryptingWriter,
    FileSeal,
    cipher_size,
    decrypted_chunks,
    verify,
)


def _encrypt(data: bytes, pieces: int = 7) -> tuple[bytes, EncryptingWriter, FileSeal]:
    out = io.BytesIO()
    writer = EncryptingWriter(out)
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        writer.write(data[i : i + step])
    seal = writer.finish()
    return out.getvalue(), writer, seal


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
def test_round_trip_and_sizes(size: int) -> None:
    data = os.urandom(size)
    blob, writer, seal = _encrypt(data)
    assert len(blob) == cipher_size(size) == writer.cipher_bytes
    assert b"".join(decrypted_chunks(io.BytesIO(blob), seal)) == data
    checked = verify(io.BytesIO(blob), seal)
    assert checked.size == size and checked.sha256 == hashlib.sha256(data).hexdigest()
    assert FileSeal.from_entry(seal.entry()) == seal  # what the envelope carries reads back


@pytest.mark.parametrize(
    "damage", ["flip", "truncate", "drop-final", "append", "swap", "relast", "other-prefix"]
)
def test_damage_is_detected(damage: str) -> None:
    data = os.urandom(3 * CHUNK + 100)
    blob, _writer, seal = _encrypt(data)
    whole = CHUNK + TAG
    if damage == "flip":
        blob = blob[:100] + bytes([blob[100] ^ 1]) + blob[101:]
    elif damage == "truncate":
        blob = blob[:-5]
    elif damage == "drop-final":  # three whole chunks left: the third was not sealed as last
        blob = blob[: 3 * whole]
    elif damage == "append":
        blob = blob + blob[:whole]
    elif damage == "swap":
        blob = blob[whole : 2 * whole] + blob[:whole] + blob[2 * whole :]
    elif damage == "relast":  # the real last chunk moved to the middle
        blob = blob[:whole] + blob[3 * whole :] + blob[whole : 3 * whole]
    else:
        seal = replace(seal, prefix=bytes(7))
    with pytest.raises(DamagedFile):
        verify(io.BytesIO(blob), seal)


def test_a_wrong_digest_is_damage() -> None:
    blob, _writer, seal = _encrypt(b"evidence")
    with pytest.raises(DamagedFile, match="not to the file that was sent"):
        verify(io.BytesIO(blob), replace(seal, digest="0" * 64))


@pytest.mark.parametrize(
    "entry",
    [
        {"alg": "xchacha20poly1305-secretstream"},
        {"digest": "not hex"},
        {"prefix": "AAAA"},
        {"key": ""},
        {"chunk": "many"},
    ],
)
def test_an_entry_this_code_cannot_open_is_refused_as_damaged(entry: dict[str, str]) -> None:
    _blob, _writer, seal = _encrypt(b"evidence")
    with pytest.raises(DamagedFile):
        FileSeal.from_entry({**seal.entry(), **entry})
