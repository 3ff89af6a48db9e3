"""A report is one transaction: stored, its proof and form spent, its session
written, in one commit (one fsync on SQLite), or nothing at all (issue 20).

SQLite promises that a committed transaction survives a power cut in WAL mode
with ``synchronous=FULL``; these tests hold the portal to those settings, to
committing each report once, before the reporter hears it was received, and to
storing nothing of a report that fails halfway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select, text

from portal.protocol.organization import Organization
from portal.protocol.pow import proof_for
from portal.server.config import Config
from portal.server.models import Envelope, Mailbox, SessionRow, SpentToken
from portal.server.web.services import services
from tests.harness.sealing import browser_style_request
from tests.harness.web import csrf_token


@contextmanager
def commits(app: Flask) -> Iterator[list[str]]:
    """Each commit the portal's engine makes meanwhile."""
    seen: list[str] = []
    with app.app_context():
        engine = services().db.engine

    def count(_conn: Any) -> None:
        seen.append("commit")

    event.listen(engine, "commit", count)
    try:
        yield seen
    finally:
        event.remove(engine, "commit", count)


def _counts(app: Flask) -> tuple[int, int, int, int]:
    with app.app_context(), services().db.reading() as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(select(func.count()).select_from(t)) or 0
            for t in (Mailbox, Envelope, SpentToken, SessionRow)
        )


def _paid_headers(client: FlaskClient) -> tuple[dict[str, str], dict[str, Any]]:
    headers = {"Content-Type": "application/json", "X-CSRFToken": csrf_token(client)}
    return headers, proof_for(client.post("/api/pow", headers=headers).get_json())


def test_a_browser_report_is_one_commit_and_no_file(
    app: Flask, client: FlaskClient, org: Organization, config: Config
) -> None:
    # A first report, so the once-a-minute purge of old spent proofs is not counted.
    first = app.test_client()
    headers, proof = _paid_headers(first)
    warm = {**browser_style_request(org, "warm")[1], "pow": proof}
    assert first.post("/api/reports", data=json.dumps(warm), headers=headers).status_code == 201
    headers, proof = _paid_headers(client)
    body = {**browser_style_request(org, "one commit")[1], "pow": proof}
    before = _counts(app)
    with commits(app) as seen:
        resp = client.post("/api/reports", data=json.dumps(body), headers=headers)
    assert resp.status_code == 201
    assert len(seen) == 1
    mailboxes, envelopes, spent, sessions = _counts(app)
    # The case and its envelope, the proof and the form spent; the session kept,
    # holding the next form's token.
    assert (mailboxes, envelopes) == (before[0] + 1, before[1] + 1)
    assert spent == before[2] + 2
    assert sessions == before[3]
    assert [p for p in Path(config.blob_dir).rglob("*") if p.is_file()] == []
    # So the next page writes nothing, and its token is a new one: the spent one
    # is refused.
    with commits(app) as seen:
        page = client.get("/report")
    assert page.status_code == 200 and len(seen) == 0
    assert headers["X-CSRFToken"] not in page.get_data(as_text=True)
    again = client.post("/api/pow", headers=headers)
    assert again.status_code == 400


def test_a_report_without_javascript_is_one_commit_after_its_form_is_spent(
    app: Flask, client: FlaskClient
) -> None:
    """The form is spent in a commit of its own before the code is derived (the
    same form raced stops there); then the report and its session, in one."""
    data = {"csrf_token": csrf_token(client), "what_happened": "sealed on arrival"}
    with commits(app) as seen:
        resp = client.post("/report", data=data)
    assert resp.status_code == 303
    assert len(seen) == 2
    assert "MARKER" not in resp.get_data(as_text=True)
    shown = client.get(resp.headers["Location"])  # the code, from the committed session
    assert shown.status_code == 200 and "already" not in shown.get_data(as_text=True)


def test_a_report_refused_halfway_stores_nothing_and_its_form_still_sends(
    app: Flask, client: FlaskClient, org: Organization
) -> None:
    """A report whose code's index clashes with another case's fails inside its
    transaction: no case, no spent form, the session as it was, so the same page
    can send again; its proof is used up all the same."""
    first = browser_style_request(org, "first")[1]
    other = app.test_client()
    headers, proof = _paid_headers(other)
    assert (
        other.post(
            "/api/reports", data=json.dumps({**first, "pow": proof}), headers=headers
        ).status_code
        == 201
    )
    headers, proof = _paid_headers(client)
    second = browser_style_request(org, "second")[1]
    clash = {**second, "mailbox": {**second["mailbox"], "index": first["mailbox"]["index"]}}
    before = _counts(app)
    resp = client.post("/api/reports", data=json.dumps({**clash, "pow": proof}), headers=headers)
    assert resp.status_code == 409
    after = _counts(app)
    assert after[:2] == before[:2] and after[3] == before[3]
    assert after[2] == before[2] + 1  # the proof, and only the proof, is spent
    again = {**second, "pow": proof}
    resp = client.post("/api/reports", data=json.dumps(again), headers=headers)
    assert resp.get_json()["error"] == "work"  # that proof bought one try
    fresh = proof_for(client.post("/api/pow", headers=headers).get_json())
    resp = client.post("/api/reports", data=json.dumps({**again, "pow": fresh}), headers=headers)
    assert resp.status_code == 201  # the form's token was not spent by the failure


def test_a_report_is_committed_as_sqlite_promises_to_keep_through_a_power_cut(
    app: Flask, config: Config
) -> None:
    if not config.database_url.startswith("sqlite"):
        pytest.skip("SQLite's settings (PostgreSQL's are the operator's)")
    with app.app_context(), services().db.transaction() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


def test_a_report_sent_again_after_its_answer_was_lost_is_stored_once_and_says_so(
    app: Flask, client: FlaskClient, org: Organization
) -> None:
    """The answer to a report is lost on the way (a Tor circuit breaks): the page
    cannot tell whether it arrived, so it sends the same sealed report again,
    with a new proof and a new form token. The portal stores nothing more and
    says the case is there, so the page shows the code it made; a report sealed
    again after a change, for the same case, is told the first one arrived. A
    case's mailbox with another report, or another mailbox at its index, is
    refused as before, and each answer costs a proof. The same request replayed
    from another session (a copy of it seen on the way) is refused as a clash:
    it learns nothing of what became of the case."""
    sent = browser_style_request(org, "they took him at night")[1]
    headers, proof = _paid_headers(client)
    first = client.post("/api/reports", data=json.dumps({**sent, "pow": proof}), headers=headers)
    assert first.status_code == 201
    before = _counts(app)

    headers, proof = _paid_headers(client)  # the page renews its token, solves again
    again = client.post("/api/reports", data=json.dumps({**sent, "pow": proof}), headers=headers)
    assert again.status_code == 200
    assert again.get_json() == {"ok": True, "stored_before": True, "changed": False}
    replayed = client.post("/api/reports", data=json.dumps({**sent, "pow": proof}), headers=headers)
    assert replayed.get_json()["error"] == "work"  # one proof, one answer

    changed = {**browser_style_request(org, "they took him at dawn")[1]}
    changed["mailbox"] = sent["mailbox"]
    headers, proof = _paid_headers(client)
    resp = client.post("/api/reports", data=json.dumps({**changed, "pow": proof}), headers=headers)
    assert resp.status_code == 200 and resp.get_json()["changed"] is True
    after = _counts(app)
    assert after[:2] == before[:2], "no second case, no second envelope"
    with app.app_context(), services().db.reading() as s:
        stored = s.scalar(select(Envelope.document))
    assert stored is not None and json.loads(stored) == sent["envelope"]

    elsewhere = app.test_client()
    headers, proof = _paid_headers(elsewhere)
    replayed_body = json.dumps({**sent, "pow": proof})
    replay = elsewhere.post("/api/reports", data=replayed_body, headers=headers)
    assert replay.status_code == 409 and "stored_before" not in replay.get_json()

    # Another case's keys with this case's index: still a clash, still refused.
    stranger = browser_style_request(org, "someone else")[1]
    stranger["mailbox"]["index"] = sent["mailbox"]["index"]
    headers, proof = _paid_headers(client)
    resp = client.post("/api/reports", data=json.dumps({**stranger, "pow": proof}), headers=headers)
    assert resp.status_code == 409 and _counts(app)[:2] == before[:2]
