"""Referring a case to a partner legal-aid organization, with the reporter's consent.

A partner is known by its public ``organization.json``, added by a person who
compared its fingerprints with the partner (``partner add``). A referral is one
file: a header naming who sent it and to whom, the payload (the chosen items of
the case and their evidence) encrypted to the partner's key, and the referring
desk's Ed25519 signature over the header, which fixes the payload by its
SHA-256. The partner's desk imports it only if the signature is by a desk on
its own partner list and the payload is for its own key.

It is refused unless the reporter answered "yes" to sharing with partner
organizations. The reporter is told through the portal: a status "referred to
legal aid" with the partner's name, in their language, in the next outbox.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.utils
from nacl.public import PublicKey, SealedBox
from nacl.secret import SecretBox
from nacl.signing import VerifyKey
from sqlalchemy import select

from portal.common.atomic import atomic_write
from portal.common.errors import NamedError
from portal.common.i18n import load_catalog
from portal.common.languages import LANGUAGES, N_
from portal.common.questionnaire import Questionnaire, QuestionnaireError, parse_canonical
from portal.desk import cases as desk_cases
from portal.desk import evidence, layout, replies
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskStore, PartnerRow, ReceivedReferral, utc_now
from portal.protocol.organization import Organization, OrganizationError, fingerprint, parse

MAX_REFERRAL = 128 * 1024 * 1024  # a referral is read whole into memory (a few times over)


class ReferralRefused(NamedError, ValueError):
    """No consent, an unknown partner, a bad signature, or not for this desk."""

    REASON = "referral"


@dataclass(frozen=True)
class Partner:
    name: str
    organization: Organization
    added_by: str
    added_at: dt.datetime

    @property
    def fingerprints(self) -> tuple[str, str]:
        """(encryption key, signing key), grouped for comparing by eye."""
        return fingerprint(self.organization.encrypt[0].kid), fingerprint(
            self.organization.verify_kid
        )


def _partner(row: PartnerRow) -> Partner:
    return Partner(row.name, parse(json.loads(row.organization)), row.added_by, row.added_at)


def read_partner_file(path: Path) -> Organization:
    try:
        return parse(json.loads(path.read_text()))
    except (OSError, ValueError, OrganizationError) as exc:
        raise ReferralRefused(f"not a usable organization.json: {exc}") from exc


def add_partner(store: DeskStore, keys: DeskKeys, org: Organization) -> Partner:
    """Record a partner a person has confirmed (its fingerprints compared)."""
    if org.verify_kid == keys.organization.verify_kid:
        raise ReferralRefused("that is this desk's own organization")
    row = PartnerRow(
        verify_kid=org.verify_kid,
        name=org.name,
        organization=json.dumps(org.to_json()),
        added_by=keys.person,
        added_at=utc_now(),
    )
    with store.changing(), store.db.transaction() as s:
        if s.get(PartnerRow, org.verify_kid) is not None:
            raise ReferralRefused(f"{org.name!r} is already a partner")
        s.add(row)
    store.custody.append(
        "partner", keys.person, added=org.name, verify_kid=org.verify_kid, kid=org.encrypt[0].kid
    )
    return _partner(row)


def partners(store: DeskStore) -> list[Partner]:
    with store.db.reading() as s:
        return [_partner(r) for r in s.scalars(select(PartnerRow).order_by(PartnerRow.name))]


def find_partner(store: DeskStore, wanted: str) -> Partner:
    """A partner by its name (any case) or the start of its signing key's id."""
    key = wanted.strip().casefold().replace(" ", "")
    found = [
        p
        for p in partners(store)
        if p.name.casefold() == wanted.strip().casefold()
        or (len(key) >= 8 and p.organization.verify_kid.startswith(key))
    ]
    if len(found) != 1:
        raise ReferralRefused(
            f"no partner called {wanted!r}" if not found else f"{wanted!r} names several"
        )
    return found[0]


# --- referring -----------------------------------------------------------------------


@dataclass(frozen=True)
class Made:
    path: Path
    sha256: str
    items: int
    files: int


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _header_bytes(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def consented(view: desk_cases.CaseView) -> bool:
    """Whether the reporter answered yes to sharing with partner organizations."""
    for item in view.items:
        if item.kind == "report" and not item.damaged:
            return str(item.content.get("fields", {}).get("may_share", "")) == "yes"
    return False


TOLD = N_(
    "We have referred your case to %(partner)s, a legal-aid organization we work "
    "with, as you allowed. They may contact you through us."
)


FORM_KEYS = ("form", "form_version", "form_digest")


def _told(partner: str, lang: str) -> str:
    """What the reporter reads, in the language of the pages they reported in."""
    catalog = load_catalog(lang if lang in LANGUAGES else "en")
    return str(catalog.gettext(TOLD)) % {"partner": partner}


def refer(
    store: DeskStore,
    keys: DeskKeys,
    case: str,
    partner: Partner,
    out: Path,
    *,
    note: str = "",
    items: list[int] | None = None,
) -> Made:
    """Write a referral of the chosen items (1-based, as the case shows them; all
    readable ones by default) and their evidence, for ``partner`` only."""
    view = desk_cases.show_case(store, keys, case, mark=False)
    if not consented(view):
        raise ReferralRefused(
            "the reporter did not answer yes to sharing with partner organizations: "
            "this case cannot be referred"
        )
    readable = [n for n, item in enumerate(view.items, start=1) if not item.damaged]
    chosen = items or readable
    if not chosen or any(n not in readable for n in chosen):
        raise ReferralRefused(f"choose among the readable items: {readable}")
    body_items: list[dict[str, Any]] = []
    body_files: list[dict[str, Any]] = []
    known = layout.known(store)
    definitions: dict[str, str] = {}  # the questionnaires the items answered, to lay them out
    for n in chosen:
        item = view.items[n - 1]
        form = {k: item.content[k] for k in FORM_KEYS if k in item.content}
        body_items.append(
            {"n": n, "kind": item.kind, "day": item.day, "lang": item.lang,
             "fields": item.content.get("fields", {}), **form}
        )  # fmt: skip
        if (digest := form.get("form_digest")) in known:
            definitions[digest] = known[digest].canonical.decode()
        for f in evidence.files_of(item.content, view.case):
            checked = evidence.check(store, f)
            if checked.state != "verified":
                continue
            data = b"".join(evidence.plaintext(store, f, checked.blob))
            body_files.append(
                {"item": n, "name": f.name, "type": f.type, "sha256": checked.sha256,
                 "data": _b64(data)}
            )  # fmt: skip
    payload = json.dumps(
        {
            "v": 1,
            "case": {"id": view.case, "name": view.name},
            "note": note.strip()[:20_000],
            "referred_by": keys.person,
            "from_kid": keys.organization.verify_kid,
            "to_kid": partner.organization.encrypt[0].kid,
            "items": body_items,
            "files": body_files,
            "questionnaires": definitions,
        },
        ensure_ascii=False,
    ).encode()
    key = nacl.utils.random(SecretBox.KEY_SIZE)
    sealed = bytes(SecretBox(key).encrypt(payload))
    recipient = partner.organization.encrypt[0]
    header = {
        "v": 1,
        "kind": "referral",
        "from": {"name": keys.organization.name, "verify_kid": keys.organization.verify_kid},
        "to_kid": recipient.kid,
        "case_name": view.name,
        "made_at": utc_now().isoformat(),
        "sealed_key": _b64(bytes(SealedBox(PublicKey(recipient.pk)).encrypt(key))),
        "payload_sha256": hashlib.sha256(sealed).hexdigest(),
    }
    doc = {
        "header": header,
        "sig": _b64(keys.signing.sign(_header_bytes(header)).signature),
        "payload": _b64(sealed),
    }
    data = json.dumps(doc).encode()
    with store.changing():
        atomic_write(out, data)
    digest = hashlib.sha256(data).hexdigest()
    store.custody.append(
        "refer",
        keys.person,
        case=view.case,
        partner=partner.name,
        verify_kid=partner.organization.verify_kid,
        items=chosen,
        files=[f["sha256"] for f in body_files],
        sha256=digest,
    )
    lang = next((i.lang for i in view.items if i.kind == "report" and i.lang), "en")
    replies.reply(store, keys, view.case, "legal_aid", _told(partner.name, lang))
    return Made(out, digest, len(body_items), len(body_files))


# --- receiving -----------------------------------------------------------------------


def is_referral(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(1) == b"{"


@dataclass(frozen=True)
class Opened:
    sha256: str
    partner: Partner
    header: dict[str, Any]
    body: dict[str, Any]


def _open(store: DeskStore, keys: DeskKeys, data: bytes) -> Opened:
    """Check a referral file in the order that spends least on a stranger: its
    shape, its sender on our partner list, their signature, the payload's hash,
    our key; only then is anything decrypted, and the body's shape checked."""
    try:
        doc = json.loads(data)
        header, sig_text, payload_text = doc["header"], doc["sig"], doc["payload"]
        sender = header["from"]["verify_kid"]
        if not (isinstance(sender, str) and isinstance(sig_text, str)):
            raise TypeError("fields")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ReferralRefused("not a referral file") from exc
    with store.db.reading() as s:
        row = s.get(PartnerRow, sender)
    if row is None:
        raise ReferralRefused(
            f"it claims to come from {str(header['from'].get('name'))[:80]!r}, which is not "
            "on this desk's partner list: add it with `portal desk partner add` after "
            "comparing fingerprints, then import again"
        )
    partner = _partner(row)
    try:
        sig = base64.b64decode(sig_text, validate=True)
        VerifyKey(partner.organization.verify_key).verify(_header_bytes(header), sig)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError) as exc:
        raise ReferralRefused(f"the signature is not {partner.name}'s: refused") from exc
    try:
        sealed = base64.b64decode(payload_text, validate=True)
    except (ValueError, TypeError) as exc:
        raise ReferralRefused("its payload is malformed") from exc
    payload_sha256 = hashlib.sha256(sealed).hexdigest()
    if payload_sha256 != header.get("payload_sha256"):
        raise ReferralRefused("the payload is not the one the partner signed: refused")
    private = keys.encrypt.get(str(header.get("to_kid")))
    if private is None:
        raise ReferralRefused("this referral was made for another organization's key")
    try:
        key = SealedBox(private).decrypt(base64.b64decode(str(header["sealed_key"])))
        body = _body(json.loads(SecretBox(key).decrypt(sealed)))
    except (nacl.exceptions.CryptoError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ReferralRefused("the referral does not open with this desk's key") from exc
    # The body names its sender and recipient too, under the encryption: a partner
    # who re-signs someone else's referral as its own is caught here.
    if body["from_kid"] != sender or body["to_kid"] != header.get("to_kid"):
        raise ReferralRefused("its sender or recipient inside is not the one outside: refused")
    return Opened(payload_sha256, partner, header, body)


def definitions_in(opened: Opened) -> dict[str, Questionnaire]:
    """The questionnaire definitions a referral carried, each checked as an inbox's
    are (one that fails, or is not what its digest says, is left out)."""
    out: dict[str, Questionnaire] = {}
    carried = opened.body.get("questionnaires")
    for digest, body in (carried if isinstance(carried, dict) else {}).items():
        try:
            q = parse_canonical(body.encode() if isinstance(body, str) else b"")
        except (QuestionnaireError, UnicodeError):
            continue
        if q.digest == digest:
            out[digest] = q
    return out


def _body(doc: Any) -> dict[str, Any]:
    """A referral's decrypted body, its shape checked before anything is kept."""
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    items, files, case = doc.get("items"), doc.get("files"), doc.get("case")
    if not (
        isinstance(case, dict)
        and isinstance(case.get("name"), str)
        and isinstance(doc.get("note", ""), str)
        and isinstance(doc.get("from_kid"), str)
        and isinstance(doc.get("to_kid"), str)
        and isinstance(items, list)
        and all(
            isinstance(i, dict)
            and isinstance(i.get("fields"), dict)
            and all(isinstance(v, str) for v in i["fields"].values())
            for i in items
        )
        and isinstance(files, list)
        and all(
            isinstance(f, dict)
            and isinstance(f.get("name"), str)
            and isinstance(f.get("sha256"), str)
            and isinstance(f.get("data"), str)
            for f in files
        )
    ):
        raise ValueError("its body is malformed")
    return doc


def import_referral(store: DeskStore, keys: DeskKeys, path: Path) -> Opened:
    """Check a referral (partner list, signature, payload, our key, its shape) and
    keep it, once: the same payload sent again is refused as already here."""
    if path.stat().st_size > MAX_REFERRAL:
        raise ReferralRefused("this file is larger than any referral this desk takes")
    data = path.read_bytes()
    opened = _open(store, keys, data)
    with store.changing():
        with store.db.reading() as s:
            if s.get(ReceivedReferral, opened.sha256) is not None:
                raise ReferralRefused("this referral was imported already")
        store.blobs.put(f"referrals/{opened.sha256}", data)
        with store.db.transaction() as s:
            s.add(
                ReceivedReferral(
                    sha256=opened.sha256,
                    partner=opened.partner.organization.verify_kid,
                    their_case=str(opened.body["case"]["name"])[:40],
                    received_at=utc_now(),
                    by=keys.person,
                )
            )
        store.custody.append(
            "referral_in",
            keys.person,
            partner=opened.partner.name,
            verify_kid=opened.partner.organization.verify_kid,
            their_case=opened.body["case"]["name"][:40],
            sha256=opened.sha256,
            files=[f["sha256"] for f in opened.body["files"]],
        )
    return opened


def received(store: DeskStore) -> list[ReceivedReferral]:
    with store.db.reading() as s:
        return list(
            s.scalars(select(ReceivedReferral).order_by(ReceivedReferral.received_at.desc()))
        )


def open_received(store: DeskStore, keys: DeskKeys, sha256: str) -> Opened:
    """A kept referral, checked and opened again (in memory)."""
    matches = [r for r in received(store) if r.sha256.startswith(sha256)] if sha256 else []
    if len(matches) != 1:
        raise ReferralRefused(f"no referral {sha256!r} on this desk")
    opened = _open(store, keys, store.blobs.read(f"referrals/{matches[0].sha256}"))
    store.custody.append("view", keys.person, referral=matches[0].sha256)
    return opened


def file_of(opened: Opened, n: int) -> tuple[bytes, str]:
    """File ``n`` (from 1) of a referral, checked against the SHA-256 it was sent with."""
    files = opened.body.get("files", [])
    if not 1 <= n <= len(files):
        raise ReferralRefused(f"no file {n} in this referral")
    f = files[n - 1]
    try:
        data = base64.b64decode(f["data"], validate=True)
    except (KeyError, ValueError, TypeError) as exc:
        raise ReferralRefused("this file is malformed") from exc
    if hashlib.sha256(data).hexdigest() != f.get("sha256"):
        raise ReferralRefused("this file does not match the SHA-256 it was sent with")
    return data, str(f.get("name") or "")
