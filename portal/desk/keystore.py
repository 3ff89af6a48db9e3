"""The desk's keys and the people who may open them (DESIGN §4).

The private keys are made once, at the key ceremony, and then wrapped once per
person: each entry of ``desk.json``'s ``people`` seals the same keys with
SecretBox under a key derived from that person's own passphrase with Argon2id.
A person who may also have a second factor (a TOTP authenticator, which works
offline) has its secret sealed inside their own entry, so it is read only with
their passphrase and checked before the keys are handed out.

``organization.json`` beside it is the public half to copy into the portal's
``keys/``. Removing a person deletes their entry: from then on their passphrase
opens nothing in this file (what they may have kept is in docs/threat-model.md).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.utils
import pyotp
from nacl import pwhash
from nacl.public import PrivateKey
from nacl.secret import SecretBox
from nacl.signing import SigningKey

from portal.common.atomic import atomic_write
from portal.common.errors import NamedError
from portal.common.languages import N_
from portal.protocol.codes import KdfParams
from portal.protocol.encoding import b64decode, b64encode
from portal.protocol.organization import Organization, RecipientKey, key_id, parse

DESK_FILE = "desk.json"
ORG_FILE = "organization.json"
CODE_KDF = KdfParams()  # the default PBKDF2 iterations (codes.DEFAULT_ITERATIONS)
FIRST_PERSON = "staff"  # the name a desk from before people were named gives its one person
MAX_NAME = 60

# Passphrase costs. SENSITIVE is the default; the others exist for demo desks
# and the test suite, where a second of Argon2 per command adds up.
COSTS = {
    "sensitive": (pwhash.argon2id.OPSLIMIT_SENSITIVE, pwhash.argon2id.MEMLIMIT_SENSITIVE),
    "moderate": (pwhash.argon2id.OPSLIMIT_MODERATE, pwhash.argon2id.MEMLIMIT_MODERATE),
    "interactive": (pwhash.argon2id.OPSLIMIT_INTERACTIVE, pwhash.argon2id.MEMLIMIT_INTERACTIVE),
}


class KeystoreError(NamedError):
    """The desk home is missing or already initialised, or a person cannot be
    added, removed or let in (one message for a wrong name, passphrase or code)."""

    REASON = "keystore"


NOT_LET_IN = N_("that name, passphrase or one-time code is not right")
MIN_PASSPHRASE = 12  # characters; every person's passphrase opens the same keys
TOO_SHORT = N_("a passphrase must be at least 12 characters: several words are easiest")
SpendCode = Callable[[str, int], bool]  # (person, TOTP time step) -> first use?


@dataclass(frozen=True)
class DeskKeys:
    """The unlocked desk: the organization and its private keys, in memory only,
    and the person who opened them (named in every custody entry they cause)."""

    organization: Organization
    encrypt: dict[str, PrivateKey]
    signing: SigningKey
    person: str = FIRST_PERSON


@dataclass(frozen=True)
class Person:
    """A person as ``desk.json`` lists them, readable without any passphrase."""

    name: str
    second_factor: bool
    added_by: str
    added_on: str


@dataclass(frozen=True)
class Enrolment:
    """A second factor just made: shown once to the new person, kept only sealed."""

    secret: str
    uri: str


def clean_person(name: str) -> str:
    """A person's name as the desk keeps it: trimmed, one line, no control characters."""
    name = unicodedata.normalize("NFC", " ".join(name.split()))
    if not name or len(name) > MAX_NAME:
        raise KeystoreError(N_("a name must be 1 to 60 characters"))
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise KeystoreError(N_("a name cannot hold control or invisible characters"))
    return name


def _passphrase_key(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    key: bytes = pwhash.argon2id.kdf(
        SecretBox.KEY_SIZE, passphrase.encode("utf-8"), salt, opslimit=ops, memlimit=mem
    )
    return key


def _read(home: Path) -> dict[str, Any]:
    try:
        desk: dict[str, Any] = json.loads((home / DESK_FILE).read_text())
    except FileNotFoundError as exc:
        raise KeystoreError(f"no desk at {home}: run `portal desk init --home {home}`") from exc
    if desk.get("v") == 1:  # one passphrase, no people yet: it is the first person's
        desk = {
            "v": 2,
            "organization": desk["organization"],
            "people": [
                {
                    "name": FIRST_PERSON,
                    "kdf": desk["kdf"],
                    "sealed": desk["sealed"],
                    "added_by": FIRST_PERSON,
                    "added_on": "",
                }
            ],
        }
    return desk


def _write(home: Path, desk: dict[str, Any]) -> None:
    atomic_write(home / DESK_FILE, json.dumps(desk, indent=2).encode() + b"\n")


def strong_enough(passphrase: str) -> str:
    """The passphrase, if it is long enough to guard keys every person shares."""
    if len(passphrase) < MIN_PASSPHRASE or len(set(passphrase)) < 5:
        raise KeystoreError(TOO_SHORT)
    return passphrase


def _wrap(
    name: str,
    passphrase: str,
    secret: dict[str, Any],
    cost: tuple[int, int],
    added_by: str,
    totp: str | None,
) -> dict[str, Any]:
    if not passphrase:
        raise KeystoreError("the passphrase must not be empty")
    ops, mem = cost
    salt = nacl.utils.random(pwhash.argon2id.SALTBYTES)
    body = dict(secret, totp=totp)
    sealed = SecretBox(_passphrase_key(passphrase, salt, ops, mem)).encrypt(
        json.dumps(body).encode()
    )
    return {
        "name": name,
        "kdf": {"alg": "argon2id13", "ops": ops, "mem": mem, "salt": b64encode(salt)},
        "sealed": b64encode(bytes(sealed)),
        "second_factor": totp is not None,
        "added_by": added_by,
        "added_on": dt.datetime.now(dt.UTC).date().isoformat(),
    }


def init(
    home: Path,
    passphrase: str,
    name: str,
    cost: str = "sensitive",
    demo: bool = False,
    person: str = FIRST_PERSON,
) -> Organization:
    """The key ceremony: new keys, wrapped for the first person, and the public file."""
    if not passphrase:
        raise KeystoreError("the passphrase must not be empty")
    person = clean_person(person)
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
    secret = {
        "encrypt": [{"kid": org.encrypt[0].kid, "sk": b64encode(bytes(enc))}],
        "signing": b64encode(bytes(sig)),
    }
    desk = {
        "v": 2,
        "organization": org.to_json(),
        "people": [_wrap(person, passphrase, secret, COSTS[cost], person, None)],
    }
    atomic_write(home / ORG_FILE, json.dumps(org.to_json(), indent=2).encode() + b"\n", 0o644)
    _write(home, desk)
    return org


def public_organization(home: Path) -> Organization:
    """The desk's public organization file, readable without the passphrase."""
    return parse(_read(home)["organization"])


def people(home: Path) -> list[Person]:
    """Who may unlock this desk now (names only; nothing secret)."""
    return [
        Person(
            name=p["name"],
            second_factor=bool(p.get("second_factor")),
            added_by=p.get("added_by", ""),
            added_on=p.get("added_on", ""),
        )
        for p in _read(home)["people"]
    ]


def is_person(home: Path, name: str) -> bool:
    return any(p.name == name for p in people(home))


def _entry(desk: dict[str, Any], name: str) -> dict[str, Any] | None:
    wanted = name.casefold()
    for p in desk["people"]:
        if str(p["name"]).casefold() == wanted:
            return dict(p)
    return None


def _open(entry: dict[str, Any], passphrase: str) -> dict[str, Any]:
    kdf = entry["kdf"]
    key = _passphrase_key(passphrase, b64decode(kdf["salt"]), kdf["ops"], kdf["mem"])
    try:
        secret: dict[str, Any] = json.loads(SecretBox(key).decrypt(b64decode(entry["sealed"])))
    except nacl.exceptions.CryptoError as exc:
        raise KeystoreError(NOT_LET_IN) from exc
    return secret


def _second_factor(
    secret: dict[str, Any], code: str | None, person: str, spend: SpendCode | None
) -> None:
    """Check the code against the person's TOTP secret (one step of clock drift
    either way); ``spend`` refuses a code already used to unlock (a replay)."""
    totp = secret.get("totp")
    if totp is None:
        return
    given = "".join((code or "").split())
    if not given.isdigit():
        raise KeystoreError(NOT_LET_IN)
    otp = pyotp.TOTP(totp)
    now = time.time()
    for drift in (-1, 0, 1):
        at = now + drift * otp.interval
        if hmac.compare_digest(otp.at(at), given):
            if spend is not None and not spend(
                person, otp.timecode(dt.datetime.fromtimestamp(at, dt.UTC))
            ):
                break
            return
    raise KeystoreError(NOT_LET_IN)


def unlock(
    home: Path,
    passphrase: str,
    person: str | None = None,
    code: str | None = None,
    spend: SpendCode | None = None,
) -> DeskKeys:
    """Open the desk's private keys as ``person`` (the only one, when there is one).

    A wrong name, passphrase or second-factor code all raise KeystoreError
    with the same words, so none of them can be guessed apart. ``spend``
    (DeskStore.spend_code) makes each one-time code good for one unlock only.
    """
    desk = _read(home)
    if person is None:
        if len(desk["people"]) != 1:
            raise KeystoreError(N_("this desk has several people: say who you are"))
        entry: dict[str, Any] | None = dict(desk["people"][0])
    else:
        entry = _entry(desk, person)
    if entry is None:
        # Spend the same work as a real attempt, so a missing name is not faster.
        ops, mem = desk["people"][0]["kdf"]["ops"], desk["people"][0]["kdf"]["mem"]
        _passphrase_key(passphrase, bytes(pwhash.argon2id.SALTBYTES), ops, mem)
        raise KeystoreError(NOT_LET_IN)
    secret = _open(entry, passphrase)
    _second_factor(secret, code, str(entry["name"]), spend)
    return DeskKeys(
        organization=parse(desk["organization"]),
        encrypt={e["kid"]: PrivateKey(b64decode(e["sk"])) for e in secret["encrypt"]},
        signing=SigningKey(b64decode(secret["signing"])),
        person=str(entry["name"]),
    )


def _secret_of(keys: DeskKeys) -> dict[str, Any]:
    return {
        "encrypt": [{"kid": kid, "sk": b64encode(bytes(sk))} for kid, sk in keys.encrypt.items()],
        "signing": b64encode(bytes(keys.signing)),
    }


def add_person(
    home: Path,
    keys: DeskKeys,
    name: str,
    passphrase: str,
    *,
    second_factor: bool = False,
    cost: str | None = None,
) -> Enrolment | None:
    """Wrap the desk's keys for a new person, by someone who has them unlocked.

    With ``second_factor`` a TOTP secret is made and sealed into the new entry;
    it is returned once, to be entered in the new person's authenticator.
    """
    name = clean_person(name)
    strong_enough(passphrase)
    desk = _read(home)
    if _entry(desk, name) is not None:
        raise KeystoreError(N_("there is already a person of that name on this desk"))
    if not is_person(home, keys.person):
        raise KeystoreError(f"{keys.person!r} is no longer a person on this desk")
    first = desk["people"][0]["kdf"]
    chosen = COSTS[cost] if cost is not None else (first["ops"], first["mem"])
    totp = pyotp.random_base32() if second_factor else None
    desk["people"].append(_wrap(name, passphrase, _secret_of(keys), chosen, keys.person, totp))
    _write(home, desk)
    if totp is None:
        return None
    uri = pyotp.TOTP(totp).provisioning_uri(name=name, issuer_name=keys.organization.name)
    return Enrolment(secret=totp, uri=uri)


def remove_person(home: Path, keys: DeskKeys, name: str) -> str:
    """Delete a person's entry: their passphrase opens nothing here from now on."""
    desk = _read(home)
    entry = _entry(desk, name)
    if entry is None:
        raise KeystoreError(f"nobody called {name!r} is a person on this desk")
    if not is_person(home, keys.person):
        raise KeystoreError(f"{keys.person!r} is no longer a person on this desk")
    if len(desk["people"]) == 1:
        raise KeystoreError(N_("the last person cannot be removed: nobody could open the desk"))
    desk["people"] = [p for p in desk["people"] if p["name"] != entry["name"]]
    _write(home, desk)
    return str(entry["name"])


def change_passphrase(home: Path, keys: DeskKeys, old: str, new: str) -> None:
    """Re-wrap the keys for the person who opened them, under a new passphrase."""
    desk = _read(home)
    entry = _entry(desk, keys.person)
    if entry is None:
        raise KeystoreError(f"{keys.person!r} is no longer a person on this desk")
    try:
        secret = _open(entry, old)
    except KeystoreError as exc:
        raise KeystoreError(N_("your passphrase now is not right: nothing was changed")) from exc
    strong_enough(new)
    kdf = entry["kdf"]
    fresh = _wrap(
        entry["name"],
        new,
        _secret_of(keys),
        (kdf["ops"], kdf["mem"]),
        entry.get("added_by", ""),
        secret.get("totp"),
    )
    fresh["added_on"] = entry.get("added_on", "")
    desk["people"] = [fresh if p["name"] == entry["name"] else p for p in desk["people"]]
    _write(home, desk)
