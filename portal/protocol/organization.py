"""The organization's public key file (organization.json): parse, check, show.

The portal knows only this file. It names the X25519 keys reports are sealed
to, the Ed25519 key the desk signs with, and the salt and cost of the code
derivation, so the browser and the server derive codes identically.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portal.common.errors import NamedError
from portal.protocol.codes import KDF_ALG, MIN_ITERATIONS, KdfParams
from portal.protocol.encoding import EncodingError, b64decode, b64encode


class OrganizationError(NamedError, ValueError):
    """organization.json is missing or malformed; the message says what is wrong."""

    REASON = "organization"


class UnsupportedDerivation(OrganizationError):
    """The file names a code derivation this portal does not speak (a desk made
    before the move to PBKDF2)."""

    REASON = "unsupported_derivation"


@dataclass(frozen=True)
class RecipientKey:
    """One X25519 public key that every envelope is sealed to."""

    kid: str
    pk: bytes


@dataclass(frozen=True)
class Organization:
    """The public half of a desk's keys, as the portal and the browser see it."""

    name: str
    encrypt: tuple[RecipientKey, ...]
    verify_kid: str
    verify_key: bytes
    code_salt: bytes
    kdf: KdfParams
    demo: bool = False

    @property
    def fingerprint(self) -> str:
        """The primary encryption key's id, grouped for comparing by eye."""
        return fingerprint(self.encrypt[0].kid)

    def recipient(self, kid: str) -> RecipientKey | None:
        return next((r for r in self.encrypt if r.kid == kid), None)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "v": 1,
            "name": self.name,
            "encrypt": [{"kid": r.kid, "pk": b64encode(r.pk)} for r in self.encrypt],
            "verify": {"kid": self.verify_kid, "vk": b64encode(self.verify_key)},
            "code_salt": b64encode(self.code_salt),
            "kdf": {"alg": KDF_ALG, "iterations": self.kdf.iterations},
        }
        if self.demo:
            doc["demo"] = True
        return doc


def key_id(public_key: bytes) -> str:
    """Hex BLAKE2b-128 of a public key."""
    return hashlib.blake2b(public_key, digest_size=16).hexdigest()


def fingerprint(kid: str) -> str:
    """A key id in groups of four hex digits."""
    return " ".join(kid[i : i + 4] for i in range(0, len(kid), 4))


def parse(doc: object) -> Organization:
    """Check every field of an organization document and build it."""
    try:
        return _parse(doc)
    except (KeyError, TypeError, EncodingError) as exc:
        raise OrganizationError(f"malformed organization file: {exc}") from exc


def _parse(doc: object) -> Organization:
    if not isinstance(doc, dict) or doc.get("v") != 1:
        raise OrganizationError("organization file must be an object with v=1")
    name = doc["name"]
    if not isinstance(name, str) or not name.strip():
        raise OrganizationError("organization name is missing")
    encrypt = []
    if not isinstance(doc["encrypt"], list) or not doc["encrypt"]:
        raise OrganizationError("organization file lists no encryption key")
    for entry in doc["encrypt"]:
        pk = b64decode(entry["pk"], length=32)
        if entry["kid"] != key_id(pk):
            raise OrganizationError("an encryption key id does not match its key")
        encrypt.append(RecipientKey(kid=entry["kid"], pk=pk))
    vk = b64decode(doc["verify"]["vk"], length=32)
    if doc["verify"]["kid"] != key_id(vk):
        raise OrganizationError("the verify key id does not match its key")
    kdf = doc["kdf"]
    if kdf["alg"] != KDF_ALG:
        raise UnsupportedDerivation(
            f"unsupported code derivation {kdf['alg']!r} (this portal derives codes with "
            f"{KDF_ALG!r}; a desk made before it must make new keys: no codes exist yet)"
        )
    iterations = kdf["iterations"]
    if not isinstance(iterations, int) or isinstance(iterations, bool):
        raise OrganizationError("the code derivation's iterations must be a whole number")
    if iterations < MIN_ITERATIONS:
        raise OrganizationError(
            f"code derivation cost is too low: {iterations} iterations, at least {MIN_ITERATIONS}"
        )
    return Organization(
        name=name,
        encrypt=tuple(encrypt),
        verify_kid=doc["verify"]["kid"],
        verify_key=vk,
        code_salt=b64decode(doc["code_salt"], length=16),
        kdf=KdfParams(iterations=iterations),
        demo=doc.get("demo") is True,
    )


def load(path: Path) -> Organization:
    """Read and check organization.json, with a message an operator can act on."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise OrganizationError(
            f"no organization key file at {path}: run `portal desk init` on the desk "
            "and copy its organization.json here (or set PORTAL_DEMO=1 for demo keys)"
        ) from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OrganizationError(f"{path} is not valid JSON: {exc}") from exc
    return parse(doc)
