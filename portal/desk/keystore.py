"""The desk's keys: the key ceremony and unlocking under the passphrase (DESIGN §4).

Private keys live in ``desk.json`` sealed with SecretBox under a key derived
from the passphrase with Argon2id; ``organization.json`` beside it is the
public half to copy into the portal's ``keys/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.utils
from nacl import pwhash
from nacl.public import PrivateKey
from nacl.secret import SecretBox
from nacl.signing import SigningKey

from portal.common.atomic import atomic_write
from portal.common.errors import NamedError
from portal.protocol.codes import KdfParams
from portal.protocol.encoding import b64decode, b64encode
from portal.protocol.organization import Organization, RecipientKey, key_id, parse

DESK_FILE = "desk.json"
ORG_FILE = "organization.json"
CODE_KDF = KdfParams()  # the default PBKDF2 iterations (codes.DEFAULT_ITERATIONS)

# Passphrase costs. SENSITIVE is the default; the others exist for demo desks
# and the test suite, where a second of Argon2 per command adds up.
COSTS = {
    "sensitive": (pwhash.argon2id.OPSLIMIT_SENSITIVE, pwhash.argon2id.MEMLIMIT_SENSITIVE),
    "moderate": (pwhash.argon2id.OPSLIMIT_MODERATE, pwhash.argon2id.MEMLIMIT_MODERATE),
    "interactive": (pwhash.argon2id.OPSLIMIT_INTERACTIVE, pwhash.argon2id.MEMLIMIT_INTERACTIVE),
}


class KeystoreError(NamedError):
    """The desk home is missing, already initialised, or the passphrase is wrong."""

    REASON = "keystore"


@dataclass(frozen=True)
class DeskKeys:
    """The unlocked desk: the organization and its private keys, in memory only."""

    organization: Organization
    encrypt: dict[str, PrivateKey]
    signing: SigningKey


def _passphrase_key(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    key: bytes = pwhash.argon2id.kdf(
        SecretBox.KEY_SIZE, passphrase.encode("utf-8"), salt, opslimit=ops, memlimit=mem
    )
    return key


def init(
    home: Path, passphrase: str, name: str, cost: str = "sensitive", demo: bool = False
) -> Organization:
    """The key ceremony: new keys, sealed under the passphrase, and the public file."""
    if not passphrase:
        raise KeystoreError("the passphrase must not be empty")
    if (home / DESK_FILE).exists():
        raise KeystoreError(f"{home} already holds a desk; refusing to overwrite its keys")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    enc = PrivateKey.generate()
    sig = SigningKey.generate()
    org = Organization(
        name=name,
        encrypt=(RecipientKey(kid=key_id(bytes(enc.public_key)), pk=bytes(enc.public_key)),),
        verify_kid=key_id(bytes(sig.verify_key)),
        verify_key=bytes(sig.verify_key),
        code_salt=nacl.utils.random(16),
        kdf=CODE_KDF,
        demo=demo,
    )
    ops, mem = COSTS[cost]
    salt = nacl.utils.random(pwhash.argon2id.SALTBYTES)
    secret = json.dumps(
        {
            "encrypt": [{"kid": org.encrypt[0].kid, "sk": b64encode(bytes(enc))}],
            "signing": b64encode(bytes(sig)),
        }
    ).encode()
    sealed = SecretBox(_passphrase_key(passphrase, salt, ops, mem)).encrypt(secret)
    desk = {
        "v": 1,
        "kdf": {"alg": "argon2id13", "ops": ops, "mem": mem, "salt": b64encode(salt)},
        "sealed": b64encode(bytes(sealed)),
        "organization": org.to_json(),
    }
    atomic_write(home / ORG_FILE, json.dumps(org.to_json(), indent=2).encode() + b"\n", 0o644)
    atomic_write(home / DESK_FILE, json.dumps(desk, indent=2).encode() + b"\n")
    return org


def public_organization(home: Path) -> Organization:
    """The desk's public organization file, readable without the passphrase."""
    try:
        desk = json.loads((home / DESK_FILE).read_text())
    except FileNotFoundError as exc:
        raise KeystoreError(f"no desk at {home}: run `portal desk init --home {home}`") from exc
    return parse(desk["organization"])


def unlock(home: Path, passphrase: str) -> DeskKeys:
    """Open the desk's private keys; a wrong passphrase raises KeystoreError."""
    try:
        desk = json.loads((home / DESK_FILE).read_text())
    except FileNotFoundError as exc:
        raise KeystoreError(f"no desk at {home}: run `portal desk init --home {home}`") from exc
    kdf = desk["kdf"]
    key = _passphrase_key(passphrase, b64decode(kdf["salt"]), kdf["ops"], kdf["mem"])
    try:
        secret = json.loads(SecretBox(key).decrypt(b64decode(desk["sealed"])))
    except nacl.exceptions.CryptoError as exc:
        raise KeystoreError("wrong passphrase") from exc
    return DeskKeys(
        organization=parse(desk["organization"]),
        encrypt={e["kid"]: PrivateKey(b64decode(e["sk"])) for e in secret["encrypt"]},
        signing=SigningKey(b64decode(secret["signing"])),
    )
