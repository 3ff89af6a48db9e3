"""Proof of work on every browser submission, message and upload start: the
attacks (none, a wrong answer, a replay, another session's answer, a flood)."""

from __future__ import annotations

import html
import json
import re
import threading
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.protocol.encoding import b64decode, b64encode
from portal.protocol.pow import Challenge, guess, is_solution, leading_zero_bits, proof_for, solve
from portal.server.app import create_app
from portal.server.config import Config, load_config
from portal.server.web.work import TOKEN_BYTES
from tests.harness.sealing import browser_style_request
from tests.harness.web import csrf_token

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
    from portal.server.models import Attachment, Mailbox
    from portal.server.web.services import services

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
        # A wrong answer does not spend the challenge (checking it costs the attacker
        # a request each time), but it is refused.
        body = _body(route, org)
        if proof is not None:
            body["pow"] = proof
        resp = client.post(route, json=body, headers=_headers(client))
        assert resp.status_code == 400 and resp.get_json()["error"] == "work", proof
    assert _count(app) == 0
    resp = client.post(route, json={**_body(route, org), "pow": good}, headers=_headers(client))
    assert resp.status_code == 201, resp.get_json()


def test_a_proof_works_once_anywhere(app: Flask, client: FlaskClient, org: Any) -> None:
    proof = proof_for(_offer(client))
    other = app.test_client()  # another session, or another host on the same database
    resp = other.post(
        "/api/uploads", json={**_body("/api/uploads", org), "pow": proof}, headers=_headers(other)
    )
    assert resp.status_code == 201
    for c in (client, other):
        resp = c.post(
            "/api/uploads", json={**_body("/api/uploads", org), "pow": proof}, headers=_headers(c)
        )
        assert resp.get_json()["error"] == "work"  # replayed


@pytest.mark.parametrize("route", ROUTES)
def test_a_proof_raced_from_many_requests_at_once_is_spent_once(
    app: Flask, client: FlaskClient, org: Any, route: str
) -> None:
    """The attack of the second review: 30 requests at once with one proof and one
    cookie made 28 reports, because spending it only edited the session. (A report
    spends its proof in the transaction that stores it.)"""
    proof = proof_for(_offer(client))
    headers = _headers(client)
    cookie = client.get_cookie("portal_session")
    assert cookie is not None
    results: list[int] = []
    barrier = threading.Barrier(12)

    def post() -> None:
        c = app.test_client()
        c.set_cookie("portal_session", cookie.value)
        barrier.wait()
        body = {**_body(route, org), "pow": proof}
        results.append(c.post(route, json=body, headers=headers).status_code)

    threads = [threading.Thread(target=post) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [201] + [400] * 11
    assert _count(app) == 1


def test_forged_stale_and_cheapened_challenges_are_refused(
    app: Flask, client: FlaskClient, org: Any
) -> None:
    offer = _offer(client)
    token = bytearray(b64decode(offer["challenge"]))
    forged = bytes(token[:-1]) + bytes([token[-1] ^ 1])  # the tag no longer matches
    stale = bytearray(token)
    stale[16:20] = (int.from_bytes(token[16:20], "big") - 3).to_bytes(4, "big")
    cheap = bytearray(token)
    cheap[20] = 0  # says "no work needed"
    for raw in (forged, bytes(stale), bytes(cheap)):
        challenge = b64encode(raw)
        nonce = proof_for({**offer, "challenge": challenge, "bits": 0})["nonce"]
        body = {**_body("/api/uploads", org), "pow": {"challenge": challenge, "nonce": nonce}}
        resp = client.post("/api/uploads", json=body, headers=_headers(client))
        assert resp.get_json()["error"] == "work"


def test_issuing_a_challenge_stores_nothing(app: Flask, client: FlaskClient) -> None:
    client.get("/report")
    with app.app_context():
        db = app.extensions["portal"].db
        before = db.engine.connect().exec_driver_sql("SELECT count(*) FROM spent_tokens").scalar()
        for _ in range(5):
            _offer(client)
        after = db.engine.connect().exec_driver_sql("SELECT count(*) FROM spent_tokens").scalar()
    assert before == after == 0


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
    assert len(b64decode(offer["challenge"], length=TOKEN_BYTES)) == TOKEN_BYTES


def test_solutions_are_what_the_construction_says() -> None:
    challenge = Challenge(bytes(range(16)), 6, 1000)
    nonce = solve(challenge)
    assert leading_zero_bits(guess(challenge, nonce)) >= 6
    assert all(leading_zero_bits(guess(challenge, n)) < 6 for n in range(nonce))
    for bad in (-1, 2**53, True, 1.0, "1", None):
        assert not is_solution(challenge, bad)


def test_challenges_stockpiled_while_quiet_are_refused_once_a_flood_raises_the_work(
    app: Flask, client: FlaskClient, org: Any
) -> None:
    """Cheap challenges fetched in a quiet hour would otherwise let a flood run at the
    lowest difficulty for the rest of their lifetime."""
    config: Config = app.extensions["portal"].config
    load = app.extensions["portal"].pow_load
    cheap = [proof_for(_offer(client)) for _ in range(2)]
    for _ in range(config.pow_rate * 4):
        load.add()  # two bits more are asked now
    for proof in cheap:
        body = {**_body("/api/uploads", org), "pow": proof}
        assert (
            client.post("/api/uploads", json=body, headers=_headers(client)).get_json()["error"]
            == "work"
        )
    fresh = proof_for(_offer(client))
    body = {**_body("/api/uploads", org), "pow": fresh}
    assert client.post("/api/uploads", json=body, headers=_headers(client)).status_code == 201


def test_a_challenge_one_bit_below_the_current_work_still_counts(
    app: Flask, client: FlaskClient, org: Any
) -> None:
    """A reporter who fetched a challenge just before the load rose is not sent back."""
    config: Config = app.extensions["portal"].config
    load = app.extensions["portal"].pow_load
    for _ in range(config.pow_rate * 2):
        load.add()
    earlier = _offer(client)
    assert earlier["bits"] == config.pow_bits + 1
    proof = proof_for(earlier)
    for _ in range(config.pow_rate * 2):
        load.add()  # now two bits above the floor
    body = {**_body("/api/uploads", org), "pow": proof}
    assert client.post("/api/uploads", json=body, headers=_headers(client)).status_code == 201


def _challenge_in_page(client: FlaskClient) -> dict[str, Any]:
    page = client.get("/report").get_data(as_text=True)
    match = re.search(r'data-work="([^"]+)"', page)
    assert match, "no challenge in the report page"
    return dict(json.loads(html.unescape(match.group(1))))


def test_the_report_page_carries_each_reader_a_challenge_of_their_own(app: Flask, org: Any) -> None:
    """The page is rendered once and kept (but for its tokens): two readers must
    not be handed one challenge, and each one's is good for one report."""
    readers = [app.test_client() for _ in range(2)]
    offers = [_challenge_in_page(c) for c in readers]
    assert offers[0]["challenge"] != offers[1]["challenge"]
    for c, offer in zip(readers, offers, strict=True):
        body = {**browser_style_request(org, "x")[1], "pow": proof_for(offer)}
        assert c.post("/api/reports", json=body, headers=_headers(c)).status_code == 201
    again = {**browser_style_request(org, "y")[1], "pow": proof_for(offers[0])}
    other = app.test_client()
    resp = other.post("/api/reports", json=again, headers=_headers(other))
    assert resp.get_json()["error"] == "work"


def test_a_refused_report_uses_up_its_proof_whatever_refused_it(
    app: Flask, client: FlaskClient, org: Any
) -> None:
    """The attack of the third review: a report refused for its attachments (an
    upload that is not there) kept its proof, so one proof bought a stream of
    write transactions, each hashing uploads under the write lock; and a proof
    already spent was still let that far."""
    proof = proof_for(_offer(client))
    bogus = {**_body("/api/reports", org), "attachments": ["00" * 16], "pow": proof}
    first = client.post("/api/reports", json=bogus, headers=_headers(client))
    assert first.status_code != 201 and first.get_json()["error"] != "work"
    for _ in range(3):  # the same proof again, refused before any storing
        again = client.post("/api/reports", json=bogus, headers=_headers(client))
        assert again.get_json()["error"] == "work"
    good = {**_body("/api/reports", org), "pow": proof}
    assert (
        client.post("/api/reports", json=good, headers=_headers(client)).get_json()["error"]
        == "work"
    )
    assert _count(app) == 0
