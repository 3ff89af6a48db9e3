"""Envelopes: sealing, opening, padding and the server's shape check (DESIGN §6)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nacl.public import PrivateKey

from portal.desk.keystore import DeskKeys
from portal.protocol.encoding import b64decode, b64encode
from portal.protocol.envelopes import (
    EnvelopeError,
    bucket_size,
    check,
    is_bucket,
    open_envelope,
    pad,
    seal,
    unpad,
)
from portal.protocol.organization import Organization, RecipientKey, key_id


@pytest.mark.parametrize(
    ("length", "bucket"),
    [(0, 1024), (1023, 1024), (1024, 2048), (16383, 16384), (16384, 32768), (40000, 65536)],
)
def test_bucket_sizes(length: int, bucket: int) -> None:
    assert bucket_size(length) == bucket
    assert is_bucket(bucket)
    assert len(pad(b"x" * length)) == bucket


def test_padding_round_trips_and_hides_length() -> None:
    for text in (b"", b"a", b"short report", "é".encode() * 900):
        assert unpad(pad(text)) == text
    assert len(pad(b"a")) == len(pad(b"a" * 1000))


def test_seal_and_open_round_trip(org: Organization, desk_keys: DeskKeys) -> None:
    plaintext = "Ce qui s'est passé — ما حدث".encode()
    env = seal("report", plaintext, org.encrypt, sealed_by="server")
    assert plaintext not in env.document
    assert open_envelope(env.document, desk_keys.encrypt) == plaintext


def test_an_envelope_for_another_key_cannot_be_opened(org: Organization) -> None:
    env = seal("report", b"secret", org.encrypt, sealed_by="server")
    stranger = PrivateKey.generate()
    with pytest.raises(EnvelopeError):
        open_envelope(env.document, {key_id(bytes(stranger.public_key)): stranger})


def _doc(org: Organization, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(seal("report", b"text", org.encrypt, "browser").document)
    doc.update(changes)
    return doc


def _check(doc: object, org: Organization) -> None:
    check(doc, org, kinds=("report",), sealed_by="browser", max_bytes=64 * 1024)


def test_check_accepts_a_well_formed_envelope(org: Organization) -> None:
    env = check(_doc(org), org, kinds=("report",), sealed_by="browser", max_bytes=64 * 1024)
    assert env.kind == "report" and env.sealed_by == "browser"


def _other_recipient() -> dict[str, str]:
    pk = bytes(PrivateKey.generate().public_key)
    return {"kid": key_id(pk), "key": b64encode(bytes(80))}


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d, o: d.pop("body"), "shape"),
        (lambda d, o: d.update(extra=1), "shape"),
        (lambda d, o: d.update(v=2), "version"),
        (lambda d, o: d.update(kind="answer"), "kind"),
        (lambda d, o: d.update(sealed_by="server"), "sealed_by"),
        (lambda d, o: d.update(recipients=[]), "recipients"),
        (lambda d, o: d.update(recipients=[_other_recipient()]), "unknown_kid"),
        (lambda d, o: d["recipients"][0].update(key="!!"), "recipients"),
        (lambda d, o: d["recipients"][0].update(key=b64encode(bytes(10))), "recipients"),
        (lambda d, o: d.update(body="not base64!"), "body"),
        (lambda d, o: d.update(body=b64encode(bytes(24 + 16 + 1000))), "padding"),
        (lambda d, o: d.update(body=b64encode(bytes(24 + 16 + 128 * 1024))), "too_large"),
    ],
)
def test_check_refuses_wrong_shapes(org: Organization, mutate: Any, reason: str) -> None:
    doc = _doc(org)
    mutate(doc, org)
    with pytest.raises(EnvelopeError) as info:
        _check(doc, org)
    assert info.value.reason == reason


def test_check_requires_every_organization_key(org: Organization) -> None:
    partner = PrivateKey.generate().public_key
    two = Organization(
        name=org.name,
        encrypt=(*org.encrypt, RecipientKey(kid=key_id(bytes(partner)), pk=bytes(partner))),
        verify_kid=org.verify_kid,
        verify_key=org.verify_key,
        code_salt=org.code_salt,
        kdf=org.kdf,
    )
    with pytest.raises(EnvelopeError) as info:
        _check(_doc(org), two)
    assert info.value.reason == "recipients"
    both = json.loads(seal("report", b"to both", two.encrypt, "browser").document)
    _check(both, two)
    assert len(b64decode(both["recipients"][1]["key"])) == 80


@pytest.mark.parametrize("doc", [None, [], "text", 3, {"v": 1}])
def test_check_refuses_non_envelopes(org: Organization, doc: object) -> None:
    with pytest.raises(EnvelopeError):
        _check(doc, org)
