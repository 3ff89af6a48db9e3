"""Server-side sessions, attacked: forged from a copy of the data dir, replayed
after Leave, logout, confirmation and idling out, and read from the database."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient

from portal.cli import main
from portal.protocol.encoding import b64decode, b64encode
from portal.server.config import Config
from portal.server.web.sessions import TOKEN_BYTES, session_id
from tests.harness.web import csrf_token, files_containing, run_sql


def _cookie(client: FlaskClient, name: str = "portal_session") -> str:
    found = client.get_cookie(name)
    assert found is not None, f"no {name} cookie"
    return found.value


def _open_a_case(client: FlaskClient) -> None:
    """Stand in for a real opening: the case entry is what every case route checks."""
    with client.session_transaction() as sess:
        sess["case"] = {"id": "a" * 32, "kind": "report", "gen": None, "seen": int(time.time())}


def _replay(app: Flask, cookie: str) -> dict[str, object]:
    """What the server holds for a fresh browser carrying only a captured cookie."""
    thief = app.test_client()
    thief.set_cookie("portal_session", cookie)
    with thief.session_transaction() as sess:
        return dict(sess)


def test_the_cookie_is_a_random_token_and_the_database_holds_only_its_hash(
    client: FlaskClient, config: Config
) -> None:
    client.get("/report")
    token = b64decode(_cookie(client), length=TOKEN_BYTES)
    rows = run_sql(config, "SELECT id, sealed FROM sessions")
    assert [bytes(r[0]) for r in rows] == [session_id(token)]
    assert files_containing(config.data_dir, token) == []
    assert files_containing(config.data_dir, _cookie(client).encode()) == []


def test_a_cookie_signed_with_every_key_of_the_portal_opens_nothing(
    app: Flask, client: FlaskClient, config: Config
) -> None:
    """The attack of the review: re-sign a readable payload with the portal's keys
    (the data dir's files and the database's shared keys)."""
    keys = [f.read_bytes() for f in sorted(config.data_dir.glob("*.key"))]
    keys += [bytes(v) for (v,) in run_sql(config, "SELECT value FROM server_keys")]
    assert len(keys) == 3
    for key in keys:
        forger = Flask("forger")
        forger.secret_key = key
        signer = SecureCookieSessionInterface().get_signing_serializer(forger)
        assert signer is not None
        for payload in (
            {"case": {"id": "a" * 32, "kind": "report", "gen": None, "seen": int(time.time())}},
            {"staff": {"id": 1, "seen": int(time.time())}},
        ):
            forged = app.test_client()
            forged.set_cookie("portal_session", signer.dumps(payload))
            token = csrf_token(forged, "/case")
            # The server ignored the forged cookie and made a session of its own.
            assert _cookie(forged) != signer.dumps(payload)
            resp = forged.post(
                "/api/case/rotate",
                json={"index": b64encode(bytes(32)), "wrapped_key": b64encode(bytes(72))},
                headers={"X-CSRFToken": token},
            )
            assert resp.status_code == 403 and resp.get_json()["error"] == "expired"


def test_a_token_made_from_the_database_rows_is_no_session(
    app: Flask, client: FlaskClient, config: Config
) -> None:
    _open_a_case(client)
    ((row_id,),) = run_sql(config, "SELECT id FROM sessions")
    assert "case" in _replay(app, _cookie(client))  # the real cookie: the case is open
    for guess in (bytes(row_id), hashlib.sha256(bytes(row_id)).digest()):
        assert _replay(app, b64encode(guess)) == {}


def test_leave_ends_the_captured_cookie_and_discards_the_case(
    app: Flask, client: FlaskClient
) -> None:
    _open_a_case(client)
    captured = _cookie(client)
    client.post("/case/leave", data={"csrf_token": csrf_token(client, "/case")})
    assert _cookie(client) != captured
    with client.session_transaction() as sess:
        assert "case" not in sess
    assert _replay(app, captured) == {}


def test_an_idle_case_ends_its_cookie(app: Flask, client: FlaskClient) -> None:
    _open_a_case(client)
    with client.session_transaction() as sess:
        sess["case"] = {**sess["case"], "seen": sess["case"]["seen"] - 3600}
    captured = _cookie(client)
    resp = client.post("/case/message", data={"csrf_token": csrf_token(client, "/case")})
    assert resp.status_code == 403
    assert _cookie(client) != captured
    assert _replay(app, captured) == {}


def test_a_dead_session_is_dead_in_the_database_too(
    app: Flask, client: FlaskClient, config: Config
) -> None:
    client.get("/report")
    store = app.session_interface.store  # type: ignore[attr-defined]
    store.clock = lambda: time.time() + config.session_lifetime_seconds + 1
    assert store.purge() == 1
    assert run_sql(config, "SELECT count(*) FROM sessions") == [(0,)]


def test_nothing_of_a_session_is_readable_in_the_data_dir(
    client: FlaskClient, config: Config, tmp_path: Path
) -> None:
    _open_a_case(client)
    assert files_containing(config.data_dir, b"a" * 32) == []
    assert files_containing(config.data_dir, b'"case"') == []


def test_purge_deletes_dead_sessions(
    client: FlaskClient, config: Config, desk_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.get("/report")
    run_sql(config, "UPDATE sessions SET expires = :t", t=int(time.time()) - 1)
    monkeypatch.setenv("PORTAL_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("PORTAL_DATABASE_URL", config.database_url)
    monkeypatch.setenv("PORTAL_KEYS", str(desk_home / "organization.json"))
    out = CliRunner().invoke(main, ["purge"])
    assert out.exit_code == 0 and "1 dead session(s)" in out.output
    assert run_sql(config, "SELECT count(*) FROM sessions") == [(0,)]


def test_a_request_in_flight_cannot_bring_a_left_session_back(
    app: Flask, client: FlaskClient
) -> None:
    """The attack of the second review: start a slow request with a copied cookie,
    let the reporter leave, then finish it; its session was written back."""
    _open_a_case(client)
    captured = _cookie(client)
    interface = app.session_interface
    with app.test_request_context("/", headers={"Cookie": f"portal_session={captured}"}):
        from flask import request

        in_flight = interface.open_session(app, request)  # loaded before Leave...
    assert in_flight is not None and "case" in in_flight
    client.post("/case/leave", data={"csrf_token": csrf_token(client, "/case")})
    for regenerating in (False, True):  # ...and saved after it, plainly or on a new token
        in_flight["case"] = {**in_flight["case"], "seen": int(time.time())}
        in_flight.replace_token = regenerating  # type: ignore[attr-defined]
        response = app.response_class()
        interface.save_session(app, in_flight, response)
        assert "Set-Cookie" not in response.headers
        assert _replay(app, captured) == {}
    with app.app_context():
        rows = app.extensions["portal"].db
        with rows.reading() as s:
            from portal.server.models import SessionRow

            held = [r.id for r in s.query(SessionRow)]
    assert len(held) == 1  # only the reporter's own, new session


def test_a_new_token_won_by_a_racing_request_dies_with_the_leave_it_raced(
    app: Flask, client: FlaskClient
) -> None:
    """The race of the third review: a request with a copied cookie moves the case
    to a new token (as confirming a new code does) while Leave, loaded a moment
    earlier, is still running. Leave then ends the lineage, so the thief's new
    token opens nothing, though Leave never saw it."""
    from flask import request

    from portal.server.web import case_session

    _open_a_case(client)
    with client.session_transaction() as sess:
        sess["line"] = "b" * 32
    captured = _cookie(client)
    interface = app.session_interface
    cookie = {"Cookie": f"portal_session={captured}"}
    with app.test_request_context("/case/leave", method="POST", headers=cookie):
        from flask import session

        assert "case" in session  # Leave has loaded the session...
        # ...when the thief's request, loaded at the same moment, moves it on.
        with app.test_request_context("/case/confirm", method="POST", headers=cookie):
            thief = interface.open_session(app, request)
            assert thief is not None
            thief.replace_token = True  # type: ignore[attr-defined]
            thief.modified = True
            won = app.response_class()
            interface.save_session(app, thief, won)
        new_cookie = won.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        assert _replay(app, new_cookie)["case"]  # for now the thief holds the case
        case_session.leave()  # and Leave finishes
        interface.save_session(app, session._get_current_object(), app.response_class())  # type: ignore[attr-defined]
    assert _replay(app, new_cookie) == {}
    assert _replay(app, captured) == {}
