"""Proof of work on every browser submission, message and upload start: the
attacks (none, a wrong answer, a replay, another session's answer, a flood)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.config import Config, load_config
from portal.encoding import b64decode
from portal.pow import (
    CHALLENGE_BYTES,
    Challenge,
    guess,
    is_solution,
    leading_zero_bits,
    proof_for,
    solve,
)
from tests.conftest import csrf_token
from tests.sealing import browser_style_request

ROUTES = ("/api/reports", "/api/uploads")


def _headers(client: FlaskClient) -> dict[str, str]:
    return {"X-CSRFToken": csrf_token(client)}


def _offer(client: FlaskClient) -> dict[str, Any]:
    resp = client.post("/api/pow", headers=_headers(client))
    assert resp.status_code == 200
    return dict(resp.get_json())


def _body(route: str, org: Any) -> dict[str, Any]:
    if route == "/api/reports":
        return browser_style_request(org, "x")[1]
    return {"size": 5000, "part_size": 4096}


def _count(app: Flask) -> int:
    from portal.models import Attachment, Mailbox
    from portal.web.services import services

    with app.app_context(), services().db.reading() as s:
        return s.query(Mailbox).count() + s.query(Attachment).count()


@pytest.mark.parametrize("route", ROUTES)
def test_a_submission_without_a_valid_proof_stores_nothing(
    app: Flask, client: FlaskClient, org: Any, route: str
) -> None:
    offer = _offer(client)
    good = proof_for(offer)
    wrong = {"challenge": offer["challenge"], "nonce": good["nonce"] + 1}
    while is_solution(
        Challenge(b64decode(offer["challenge"]), offer["bits"], offer["iterations"]),
        wrong["nonce"],
    ):
        wrong["nonce"] += 1
    made_up = {"challenge": "A" * 22, "nonce": 0}
    for proof in (None, {}, made_up, {"challenge": offer["challenge"], "nonce": "0"}, wrong):
        body = _body(route, org)
        if proof is not None:
            body["pow"] = proof
        resp = client.post(route, json=body, headers=_headers(client))
        assert resp.status_code == 400 and resp.get_json()["error"] == "work", proof
    # The wrong answer used the challenge up: even the right one is refused now.
    resp = client.post(route, json={**_body(route, org), "pow": good}, headers=_headers(client))
    assert resp.get_json()["error"] == "work"
    assert _count(app) == 0
    fresh = proof_for(_offer(client))
    resp = client.post(route, json={**_body(route, org), "pow": fresh}, headers=_headers(client))
    assert resp.status_code == 201


def test_a_proof_works_once_and_only_in_its_own_session(
    app: Flask, client: FlaskClient, org: Any
) -> None:
    proof = proof_for(_offer(client))
    other = app.test_client()
    resp = other.post(
        "/api/uploads", json={**_body("/api/uploads", org), "pow": proof}, headers=_headers(other)
    )
    assert resp.get_json()["error"] == "work"
    resp = client.post(
        "/api/uploads", json={**_body("/api/uploads", org), "pow": proof}, headers=_headers(client)
    )
    assert resp.status_code == 201
    resp = client.post(
        "/api/uploads", json={**_body("/api/uploads", org), "pow": proof}, headers=_headers(client)
    )
    assert resp.get_json()["error"] == "work"  # replayed


def test_a_session_holds_few_challenges(client: FlaskClient) -> None:
    offers = [_offer(client) for _ in range(12)]
    with client.session_transaction() as sess:
        held = {c["c"] for c in sess["pow"]}
    assert len(held) == 8 and offers[-1]["challenge"] in held
    assert offers[0]["challenge"] not in held


def test_the_difficulty_rises_with_a_flood_and_has_a_ceiling(
    app: Flask, client: FlaskClient
) -> None:
    config: Config = app.extensions["portal"].config
    load = app.extensions["portal"].pow_load
    assert _offer(client)["bits"] == config.pow_bits
    for _ in range(config.pow_rate * 4):
        load.add()
    assert _offer(client)["bits"] == config.pow_bits + 2  # four times the rate: two bits more
    for _ in range(config.pow_rate * 10_000):
        load.add()
    assert _offer(client)["bits"] == config.pow_max_bits


def test_the_default_work_is_real(config: Config) -> None:
    defaults = load_config({})
    assert (defaults.pow_bits, defaults.pow_iterations, defaults.pow_max_bits) == (8, 1000, 16)
    app = create_app(replace(config, pow_bits=defaults.pow_bits))
    c = app.test_client()
    offer = c.post("/api/pow", headers=_headers(c)).get_json()
    assert offer["bits"] == 8 and offer["iterations"] == 1000
    assert len(b64decode(offer["challenge"], length=CHALLENGE_BYTES)) == CHALLENGE_BYTES


def test_solutions_are_what_the_construction_says() -> None:
    challenge = Challenge(bytes(range(16)), 6, 1000)
    nonce = solve(challenge)
    assert leading_zero_bits(guess(challenge, nonce)) >= 6
    assert all(leading_zero_bits(guess(challenge, n)) < 6 for n in range(nonce))
    for bad in (-1, 2**53, True, 1.0, "1", None):
        assert not is_solution(challenge, bad)
