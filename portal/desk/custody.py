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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from portal.protocol.encoding import EncodingError, b64decode

GENESIS = "0" * 64
EVENTS = (
    "import", "view", "reply", "invite", "export", "save", "discard",
    "note", "tags", "assign", "due", "person", "search", "settings",
    "case_file", "table", "partner", "refer", "referral_in", "publish",
)  # fmt: skip


def checkpoint_message(n: int, head: str) -> bytes:
    """What the desk signs at each export to anchor its log: the entry count and head.

    The portal keeps each signed head it receives and sends the newest back in
    every inbox, so a log cut short or rewritten on the desk no longer matches.
    """
    return json.dumps({"v": 1, "custody": {"n": n, "hash": head}}, sort_keys=True).encode()


@dataclass(frozen=True)
class Anchor:
    """A head of the log the desk signed at an export (``n`` entries, last ``hash``)."""

    n: int
    hash: str
    outbox: int


def checked_anchors(raw: object, verify_key: bytes) -> list[Anchor]:
    """Signed checkpoints (as ``portal checkpoints`` prints them or the desk keeps
    them), each checked against the desk's own signing key; ValueError otherwise."""
    if not isinstance(raw, list):
        raise ValueError("expected a list of checkpoints")
    out = []
    for entry in raw:
        try:
            n, head, outbox = entry["n"], entry["hash"], entry["outbox"]
            signature = b64decode(entry["sig"], length=64)
            if not (isinstance(n, int) and isinstance(head, str) and isinstance(outbox, int)):
                raise TypeError("field types")
            VerifyKey(verify_key).verify(checkpoint_message(n, head), signature)
        except (KeyError, TypeError, EncodingError, BadSignatureError) as exc:
            raise ValueError(
                f"a checkpoint is malformed or not signed by this desk ({exc})"
            ) from exc
        out.append(Anchor(n, head, outbox))
    return out


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

    def head(self) -> tuple[int, str]:
        """The number of entries and the hash of the last one (GENESIS when empty)."""
        return self._last()

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

    def append(self, event: str, by: str, **details: Any) -> dict[str, Any]:
        """Add one entry, durably, chained to the last one, naming the person ``by``
        whom it was done (older entries, from before people were named, have none)."""
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
                "by": by,
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

    def verify(self, anchors: Iterable[tuple[int, str]] = ()) -> Verification:
        """Walk the chain; report the first entry that does not check.

        ``anchors`` are signed heads (entry count, hash of that entry) the desk
        gave away: the log must still hold each, exactly, or it was cut short
        or rewritten after that export.
        """
        hashes: list[str] = []
        prev = GENESIS
        if self.path.exists():
            with self.path.open("rb") as handle:
                for number, raw in enumerate(handle, start=1):
                    try:
                        entry = json.loads(raw)
                    except ValueError:
                        return Verification(len(hashes), number, "not a JSON entry")
                    if entry.get("n") != number:
                        return Verification(len(hashes), number, "entry number out of sequence")
                    if entry.get("prev") != prev:
                        return Verification(
                            len(hashes), number, "does not follow the entry before it"
                        )
                    if entry.get("hash") != entry_hash(entry):
                        return Verification(len(hashes), number, "its contents were changed")
                    prev = entry["hash"]
                    hashes.append(prev)
        for n, head in sorted(anchors, reverse=True):
            if n > len(hashes):
                return Verification(
                    len(hashes),
                    len(hashes) + 1,
                    f"the log was cut short: a signed checkpoint holds {n} entries, "
                    f"the log only {len(hashes)}",
                )
            if n >= 1 and hashes[n - 1] != head:
                return Verification(
                    len(hashes), n, "rewritten: it is not the entry the desk signed at an export"
                )
        return Verification(entries=len(hashes), first_broken=None)

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            return [json.loads(line) for line in handle if line.strip()]
