"""The purges that ride on requests fail alone: the request they ride on stands.

A reporter whose report was stored must be told so, even when the once-a-minute
purge that happened to run after it fails (a reporter told "error" may send the
report again); the failure is logged by name, with nothing of the request in it.
"""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from portal.protocol.organization import Organization
from portal.server.models import Mailbox
from portal.server.spent import SpentTokens
from portal.server.web import work
from portal.server.web.services import services
from portal.server.web.sessions import ServerSessionInterface, SessionStore
from tests.harness.sealing import browser_style_request
from tests.harness.web import api_post


def _failing_purge(*_args: object) -> int:
    raise OperationalError("DELETE FROM spent_tokens", {}, Exception("disk I/O error"))


def _reports(app: Flask) -> int:
    with app.app_context(), services().db.reading() as s:
        return s.scalar(select(func.count()).select_from(Mailbox)) or 0


def test_a_report_is_stored_and_answered_when_the_purge_after_it_fails(
    app: Flask,
    client: FlaskClient,
    org: Organization,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(SpentTokens, "purge", _failing_purge)
    monkeypatch.setattr(work._PURGE_SPENT, "_last", 0.0)  # due now
    code, body = browser_style_request(org, "stored, whatever the housekeeping does")
    before = _reports(app)
    with caplog.at_level(logging.WARNING, logger="portal.server.web.housekeeping"):
        resp = api_post(client, "/api/reports", body)
    assert resp.status_code == 201
    assert _reports(app) == before + 1
    (record,) = [r for r in caplog.records if r.name == "portal.server.web.housekeeping"]
    assert record.getMessage() == (
        "The routine purge of spent proofs of work failed (OperationalError); "
        "it runs again within 60 s."
    )
    assert code not in caplog.text and "disk I/O" not in caplog.text
    # The session stands: the next page is served and a second report goes through.
    monkeypatch.setattr(work._PURGE_SPENT, "_last", 0.0)
    _, again = browser_style_request(org, "and the next one")
    assert api_post(client, "/api/reports", again).status_code == 201
    assert _reports(app) == before + 2


def test_a_page_is_served_when_the_dead_sessions_purge_fails(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(SessionStore, "purge", _failing_purge)
    interface = app.session_interface
    assert isinstance(interface, ServerSessionInterface)
    monkeypatch.setattr(interface._purge, "_last", 0.0)
    with caplog.at_level(logging.WARNING, logger="portal.server.web.housekeeping"):
        page = app.test_client().get("/report")  # a new session: its cookie is set
    assert page.status_code == 200
    assert "portal_session=" in page.headers.get("Set-Cookie", "")
    assert "The routine purge of dead sessions failed (OperationalError)" in caplog.text


def test_a_purge_runs_once_a_period_in_a_worker(
    app: Flask, client: FlaskClient, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []
    monkeypatch.setattr(SpentTokens, "purge", lambda _self, hour: runs.append(hour) or 0)
    monkeypatch.setattr(work._PURGE_SPENT, "_last", 0.0)
    for n in range(3):
        _, body = browser_style_request(org, f"report {n}")
        assert api_post(client, "/api/reports", body).status_code == 201
    assert runs == [work.current_hour() - work.LIFETIME_HOURS]
