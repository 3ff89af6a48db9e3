"""Relay staff: accounts, login with a real TOTP, and carrying bundles through the pages."""

from __future__ import annotations

import io
import json
import re
import statistics
import tarfile
import time
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from portal.cli import main
from portal.desk import cases, replies
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskStore
from portal.server.config import Config
from portal.server.staff import (
    PASSPHRASE_WORDS,
    TOTP_STEP,
    NewAccount,
    StaffAccounts,
    diceware_passphrase,
)
from portal.server.web.requests import PortalRequest
from portal.server.web.services import services
from tests.harness.loop import desk_outbox, submit_report
from tests.harness.web import csrf_token, files_containing


class FakeClock:
    """A controllable clock for TOTP steps and lockouts (time is the input here)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(relay_app: Flask) -> FakeClock:
    fake = FakeClock()
    relay_app.extensions["portal"].staff.clock = fake
    return fake


@pytest.fixture
def account(relay_app: Flask) -> NewAccount:
    with relay_app.app_context():
        return services().staff.add("relay.one")


def _code(account: NewAccount, clock: FakeClock, step: int = 0) -> str:
    return str(pyotp.TOTP(account.totp_secret).at(clock.now + step * TOTP_STEP))


def _login(client: FlaskClient, name: str, passphrase: str, totp: str) -> int:
    return int(
        client.post(
            "/staff/login",
            data={
                "csrf_token": csrf_token(client, "/staff/"),
                "name": name,
                "passphrase": passphrase,
                "totp": totp,
            },
        ).status_code
    )


def test_passphrases_are_diceware() -> None:
    words = diceware_passphrase().split(" ")
    assert len(words) == PASSPHRASE_WORDS and all(w.isalpha() or "-" in w for w in words)
    assert diceware_passphrase() != diceware_passphrase()


def test_login_with_real_totp_and_dashboard_counts(
    client: FlaskClient, relay: FlaskClient, account: NewAccount, clock: FakeClock
) -> None:
    assert "Relay log in" in relay.get("/staff/").get_data(as_text=True)
    submit_report(client, "MARKER-relay")
    assert _login(relay, "relay.one", account.passphrase, _code(account, clock)) == 303
    page = relay.get("/staff/").get_data(as_text=True)
    assert re.search(r'id="count-envelopes">1<', page)
    assert "MARKER-relay" not in page


def test_a_totp_code_is_never_accepted_twice(
    relay_app: Flask, relay: FlaskClient, account: NewAccount, clock: FakeClock
) -> None:
    code = _code(account, clock)
    assert _login(relay, "relay.one", account.passphrase, code) == 303
    other = relay_app.test_client()
    assert _login(other, "relay.one", account.passphrase, code) == 403
    assert _login(other, "relay.one", account.passphrase, _code(account, clock, -1)) == 403
    clock.now += TOTP_STEP
    assert _login(other, "relay.one", account.passphrase, _code(account, clock)) == 303


@pytest.mark.parametrize("what", ["passphrase", "totp", "name"])
def test_wrong_credentials_are_refused(
    relay: FlaskClient, account: NewAccount, clock: FakeClock, what: str
) -> None:
    name, passphrase, totp = "relay.one", account.passphrase, _code(account, clock)
    if what == "passphrase":
        passphrase = diceware_passphrase()
    elif what == "totp":
        totp = f"{(int(totp) + 1) % 1_000_000:06d}"
    else:
        name = "nobody"
    assert _login(relay, name, passphrase, totp) == 403
    assert relay.get("/staff/inbox.tar").status_code == 403


def test_wrong_totp_codes_pause_the_account(
    relay_app: Flask, relay: FlaskClient, account: NewAccount, clock: FakeClock
) -> None:
    with relay_app.app_context():
        services().staff.add("relay.two")
    for _ in range(5):
        assert _login(relay, "relay.one", account.passphrase, "000000") == 403
    page = relay.post(
        "/staff/login",
        data={
            "csrf_token": csrf_token(relay, "/staff/"),
            "name": "relay.one",
            "passphrase": account.passphrase,
            "totp": _code(account, clock),
        },
    ).get_data(as_text=True)
    assert "paused for a while" in page  # the right credentials wait too
    clock.now += 31
    assert _login(relay, "relay.one", account.passphrase, _code(account, clock)) == 303


CSRF_VALUE = re.compile(r'name="csrf_token" value="[^"]*"')


def _refusal(relay: FlaskClient, name: str, passphrase: str) -> tuple[str, float]:
    started = time.perf_counter()
    page = relay.post(
        "/staff/login",
        data={
            "csrf_token": csrf_token(relay, "/staff/"),
            "name": name,
            "passphrase": passphrase,
            "totp": "123456",
        },
    )
    took = time.perf_counter() - started
    assert page.status_code == 403
    text = CSRF_VALUE.sub("", page.get_data(as_text=True))  # a fresh token on every page
    return text[text.index("<main") :], took


def test_names_cannot_be_enumerated_or_locked_without_the_passphrase(
    relay: FlaskClient, account: NewAccount, clock: FakeClock
) -> None:
    """The attack: try names, watch the answers and their timing, hammer a real name."""
    answers: dict[str, list[tuple[str, float]]] = {"relay.one": [], "nobody": []}
    for _ in range(12):  # well past the five free failures
        for name in answers:
            answers[name].append(_refusal(relay, name, "wrong words here"))
    pages = {page for runs in answers.values() for page, _ in runs}
    assert len(pages) == 1 and "paused" not in pages.pop()
    real = statistics.median(t for _, t in answers["relay.one"])
    unknown = statistics.median(t for _, t in answers["nobody"])
    assert 0.6 < real / unknown < 1.6, (real, unknown)
    # The real account was not locked by all that: its owner logs in at once.
    assert _login(relay, "relay.one", account.passphrase, _code(account, clock)) == 303


def test_idle_staff_sessions_end(relay: FlaskClient, account: NewAccount, clock: FakeClock) -> None:
    _login(relay, "relay.one", account.passphrase, _code(account, clock))
    with relay.session_transaction() as sess:
        sess["staff"] = {**sess["staff"], "seen": sess["staff"]["seen"] - 31 * 60}
    assert relay.get("/staff/inbox.tar").status_code == 403


def test_a_cookie_captured_before_logout_or_removal_is_dead(
    relay_app: Flask, relay: FlaskClient, account: NewAccount, clock: FakeClock
) -> None:
    """The attack: copy the relay cookie, wait for logout (or removal), use it."""
    anonymous = relay.get_cookie("relay_session")
    assert _login(relay, "relay.one", account.passphrase, _code(account, clock)) == 303
    captured = relay.get_cookie("relay_session")
    assert captured is not None and (anonymous is None or anonymous.value != captured.value)
    thief = relay_app.test_client()
    thief.set_cookie("relay_session", captured.value)
    assert thief.get("/staff/inbox.tar").status_code == 200  # the copy works while it lasts
    relay.post("/staff/logout", data={"csrf_token": csrf_token(relay, "/staff/")})
    assert relay.get_cookie("relay_session") is None
    assert thief.get("/staff/inbox.tar").status_code == 403
    clock.now += TOTP_STEP
    assert _login(relay, "relay.one", account.passphrase, _code(account, clock)) == 303
    thief.set_cookie("relay_session", relay.get_cookie("relay_session").value)  # type: ignore[union-attr]
    with relay_app.app_context():
        services().staff.remove("relay.one")
    assert thief.get("/staff/inbox.tar").status_code == 403


def test_rehash_when_parameters_change(
    relay_app: Flask, account: NewAccount, clock: FakeClock
) -> None:
    from argon2 import PasswordHasher

    from portal.common.db import Database
    from portal.server.models import StaffAccount

    db: Database = relay_app.extensions["portal"].db
    with db.transaction() as s:
        row = s.query(StaffAccount).one()
        row.password_hash = PasswordHasher(time_cost=1, memory_cost=8192).hash(account.passphrase)
    staff: StaffAccounts = relay_app.extensions["portal"].staff
    staff.login("relay.one", account.passphrase, _code(account, clock))
    with db.reading() as s:
        assert "t=3" in s.query(StaffAccount).one().password_hash


def test_inbox_download_and_outbox_upload_through_the_pages(
    app: Flask,
    client: FlaskClient,
    relay: FlaskClient,
    account: NewAccount,
    clock: FakeClock,
    desk_keys: DeskKeys,
    tmp_path: Path,
) -> None:
    submit_report(client, "MARKER-carry")
    _login(relay, "relay.one", account.passphrase, _code(account, clock))
    resp = relay.get("/staff/inbox.tar")
    assert resp.status_code == 200 and resp.mimetype == "application/x-tar"
    assert b"MARKER-carry" not in resp.data
    inbox = tmp_path / "inbox.tar"
    inbox.write_bytes(resp.data)
    with tarfile.open(inbox) as tar:
        assert tar.getnames()[0] == "manifest.json"
    store = DeskStore(tmp_path / "desk")
    cases.import_inbox(store, desk_keys, inbox)
    replies.reply(store, desk_keys, cases.list_cases(store)[0].case, "in_review", "ok")
    outbox = desk_outbox(store, desk_keys, tmp_path / "outbox.tar")
    up = _upload_outbox(relay, outbox.read_bytes())
    assert up.status_code == 200
    assert "1 reply item(s)" in up.get_data(as_text=True)
    again = _upload_outbox(relay, outbox.read_bytes())
    assert again.status_code == 400 and "already imported" in again.get_data(as_text=True)
    garbage = _upload_outbox(relay, b"not a tar")
    assert garbage.status_code == 400 and "Nothing was changed" in garbage.get_data(as_text=True)
    assert not list((app.extensions["portal"].config.data_dir / "relay").iterdir())


def _upload_outbox(client: FlaskClient, data: bytes) -> Any:
    """Upload an outbox file through the relay page, as staff do."""
    return client.post(
        "/staff/outbox",
        data={"csrf_token": csrf_token(client, "/staff/"), "outbox": (io.BytesIO(data), "o.tar")},
        content_type="multipart/form-data",
    )


def test_the_public_app_has_no_relay_whatever_the_host(client: FlaskClient) -> None:
    """The attack: reach the relay through the public listener with a forged Host."""
    for host in ("http://localhost", "http://relay.internal", "http://127.0.0.1:8001"):
        for path in ("/staff/", "/staff/login", "/staff/inbox.tar"):
            assert client.get(path, base_url=host).status_code == 404
        assert client.post("/staff/outbox", base_url=host).status_code in (400, 404)


def test_the_relay_app_serves_no_reporter_pages(relay: FlaskClient) -> None:
    for path in ("/report", "/case", "/api/ping", "/safety"):
        assert relay.get(path).status_code == 404
    assert relay.get("/").headers["Location"].endswith("/staff/")


def test_an_outbox_upload_is_refused_unread_before_login(relay_app: Flask) -> None:
    """The attack: post a large outbox without logging in; nothing may be spooled."""
    spooled: list[int] = []

    class Watched(PortalRequest):
        def _get_file_stream(self, *args: Any, **kwargs: Any) -> Any:
            spooled.append(1)
            return io.BytesIO()

    relay_app.request_class = Watched
    body = b'--x\r\nContent-Disposition: form-data; name="outbox"; filename="o.tar"\r\n\r\n'
    stream = io.BytesIO(body + b"\0" * (8 * 1024 * 1024) + b"\r\n--x--\r\n")
    resp = relay_app.test_client().post(
        "/staff/outbox", input_stream=stream, content_type="multipart/form-data; boundary=x"
    )
    assert resp.status_code == 403 and resp.headers["Connection"] == "close"
    assert spooled == [] and stream.tell() == 0  # not one byte of the body was read


def test_staff_cli_add_list_remove(
    app: Flask, monkeypatch: pytest.MonkeyPatch, config: Config, desk_home: Path
) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("PORTAL_DATABASE_URL", config.database_url)
    monkeypatch.setenv("PORTAL_KEYS", str(desk_home / "organization.json"))
    runner = CliRunner()
    out = runner.invoke(main, ["staff", "add", "alice", "--json"])
    assert out.exit_code == 0, out.output
    made = json.loads(out.output)
    assert made["otpauth_uri"].startswith("otpauth://totp/")
    assert len(made["passphrase"].split()) == PASSPHRASE_WORDS
    text = runner.invoke(main, ["staff", "add", "bob"])
    assert "Passphrase:" in text.output and "█" in text.output
    assert runner.invoke(main, ["staff", "add", "bob"]).exit_code != 0
    assert [
        r["name"] for r in json.loads(runner.invoke(main, ["staff", "list", "--json"]).output)
    ] == ["alice", "bob"]
    assert runner.invoke(main, ["staff", "remove", "alice"]).exit_code == 0
    assert runner.invoke(main, ["staff", "remove", "alice"]).exit_code != 0
    # The TOTP secret is not stored in the clear.
    assert files_containing(config.data_dir, made["totp_secret"].encode()) == []
    assert files_containing(config.data_dir, made["passphrase"].encode()) == []
