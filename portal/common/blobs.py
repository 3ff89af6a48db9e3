"""The blob store: ciphertext files on disk, written atomically, named by id."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import BinaryIO

from portal.common.atomic import atomic_write

_NAME = re.compile(r"\A[a-z]+/[0-9a-f]{16,64}\Z")


class BlobStore:
    """Files under one root; names are ``<area>/<hex id>`` and nothing else."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError("invalid blob name")
        return self.root / name

    def put(self, name: str, data: bytes) -> None:
        atomic_write(self.path(name), data)

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def open(self, name: str) -> BinaryIO:
        return self.path(name).open("rb")

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(name).unlink()
