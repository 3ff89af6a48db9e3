"""The case JSON API the browser uses: only ciphertext in, clear 4xx for bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from nacl.public import PrivateKey
from nacl.secret import SecretBox

from portal.protocol import codes
from portal.protocol.encoding import b64decode, b64encode
from portal.protocol.envelopes import seal
from portal.protocol.mailbox import new_mailbox_key
from portal.protocol.organization import Organization
from portal.protocol.reports import seal_follow_up
from tests.harness.sealing import browser_style_request
from tests.harness.web import api_post


def _post(client: FlaskClient, path: str, body: Any) -> Any:
    return api_post(client, path, body, page="/case")


def _new_case(client: FlaskClient, org: Organization) -> str:
    code, body = browser_style_request(org, "report")
    assert _post(client, "/api/reports", body).status_code == 201
    return code


def _lookup(code: str, org: Organization) -> str:
    return b64encode(codes.derive(code, org.code_salt, org.kdf).lookup)


def test_open_rotate_confirm_and_message(client: FlaskClient, org: Organization) -> None:
    code = _new_case(client, org)
    resp = _post(client, "/api/case/open", {"lookup": _lookup(code, org)})
    assert resp.status_code == 200
    record = resp.get_json()
    assert set(record) == {"mailbox", "kind", "wrapped_key", "created", "replies", "sent"}
    assert record["sent"] == [
        {"kind": "report", "day": record["created"], "size": record["sent"][0]["size"]}
    ]
    wrap = codes.derive(code, org.code_salt, org.kdf).wrap
    reporter = PrivateKey(SecretBox(wrap).decrypt(b64decode(record["wrapped_key"])))
    fresh = codes.generate()
    key = new_mailbox_key(fresh, org, reporter)
    rot = _post(
        client,
        "/api/case/rotate",
        {"index": b64encode(key.index), "wrapped_key": b64encode(key.wrapped_key)},
    )
    assert rot.status_code == 200
    assert _post(
        client, "/api/case/confirm", {"rotation": rot.get_json()["rotation"]}
    ).get_json() == {"ok": True, "already": False}
    assert _post(client, "/api/case/open", {"lookup": _lookup(code, org)}).status_code == 404
    assert _post(client, "/api/case/open", {"lookup": _lookup(fresh, org)}).status_code == 200
    message = seal_follow_up(org, "message", "hi", reporter, sealed_by="browser")
    resp = _post(client, "/api/case/message", {"envelope": json.loads(message.document)})
    assert resp.status_code == 201


@pytest.mark.parametrize("body", [{}, {"lookup": "short"}, {"lookup": 5}, {"lookup": "A" * 44}])
def test_malformed_lookups_are_refused(client: FlaskClient, body: Any) -> None:
    resp = _post(client, "/api/case/open", body)
    assert resp.status_code == 400 and resp.get_json()["error"] == "lookup"


def test_unknown_lookup_gets_the_neutral_answer(client: FlaskClient, org: Organization) -> None:
    resp = _post(client, "/api/case/open", {"lookup": _lookup(codes.generate(), org)})
    assert resp.status_code == 404
    assert resp.get_json() == {"error": "no_case", "message": resp.get_json()["message"]}


@pytest.mark.parametrize("path", ["/api/case/rotate", "/api/case/confirm", "/api/case/message"])
def test_nothing_works_without_an_open_case(client: FlaskClient, path: str) -> None:
    resp = _post(client, path, {})
    assert resp.status_code == 403 and resp.get_json()["error"] == "expired"


def test_confirming_a_rotation_that_is_not_pending_is_refused(
    client: FlaskClient, org: Organization
) -> None:
    code = _new_case(client, org)
    _post(client, "/api/case/open", {"lookup": _lookup(code, org)})
    resp = _post(client, "/api/case/confirm", {"rotation": "0" * 32})
    assert resp.status_code == 409 and resp.get_json()["error"] == "superseded"
    assert _post(client, "/api/case/confirm", {"rotation": 7}).status_code == 400
    assert _post(client, "/api/case/open", {"lookup": _lookup(code, org)}).status_code == 200


def test_a_witness_case_takes_answers_not_messages(
    app: Flask, client: FlaskClient, org: Organization
) -> None:
    code = _new_case(client, org)
    _post(client, "/api/case/open", {"lookup": _lookup(code, org)})
    someone = PrivateKey.generate()
    answer = seal("answer", b"{}", org.encrypt, "browser", sender=someone)
    resp = _post(client, "/api/case/message", {"envelope": json.loads(answer.document)})
    assert resp.status_code == 400 and resp.get_json()["error"] == "kind"
    server_sealed = seal("message", b"{}", org.encrypt, "server", sender=someone)
    resp = _post(client, "/api/case/message", {"envelope": json.loads(server_sealed.document)})
    assert resp.status_code == 400 and resp.get_json()["error"] == "sealed_by"


def test_a_rotation_cannot_reuse_an_index_in_use(client: FlaskClient, org: Organization) -> None:
    first = _new_case(client, org)
    other = client.application.test_client()
    second = _new_case(other, org)
    _post(client, "/api/case/open", {"lookup": _lookup(first, org)})
    taken = codes.derive(second, org.code_salt, org.kdf).index
    resp = _post(
        client, "/api/case/rotate", {"index": b64encode(taken), "wrapped_key": b64encode(bytes(72))}
    )
    assert resp.status_code == 409
    assert _post(other, "/api/case/open", {"lookup": _lookup(second, org)}).status_code == 200
