"""The desk's custody log: an append-only, hash-chained record of what was done.

Each line is a JSON entry holding the hash of the line before it, so removing,
reordering or editing any entry breaks the chain from that point on, and
``verify()`` names the first entry that no longer checks.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
EVENTS = ("import", "view", "reply", "invite", "export", "save")


@dataclass(frozen=True)
class Verification:
    entries: int
    first_broken: int | None  # 1-based line number
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_broken is None


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class CustodyLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _last(self) -> tuple[int, str]:
        if not self.path.exists():
            return 0, GENESIS
        last = None
        with self.path.open("rb") as handle:
            for line in handle:
                if line.strip():
                    last = line
        if last is None:
            return 0, GENESIS
        entry = json.loads(last)
        return int(entry["n"]), str(entry["hash"])

    def append(self, event: str, **details: Any) -> dict[str, Any]:
        """Add one entry, durably, chained to the last one."""
        assert event in EVENTS, event
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            n, prev = self._last()
            entry: dict[str, Any] = {
                "n": n + 1,
                "at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
                "event": event,
                "details": details,
                "prev": prev,
            }
            entry["hash"] = entry_hash(entry)
            line = json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n"
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry

    def verify(self) -> Verification:
        """Walk the chain; report the first entry that does not check."""
        if not self.path.exists():
            return Verification(entries=0, first_broken=None)
        prev, count = GENESIS, 0
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    entry = json.loads(raw)
                except ValueError:
                    return Verification(count, number, "not a JSON entry")
                if entry.get("n") != number:
                    return Verification(count, number, "entry number out of sequence")
                if entry.get("prev") != prev:
                    return Verification(count, number, "does not follow the entry before it")
                if entry.get("hash") != entry_hash(entry):
                    return Verification(count, number, "its contents were changed")
                prev, count = entry["hash"], count + 1
        return Verification(entries=count, first_broken=None)

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            return [json.loads(line) for line in handle if line.strip()]
