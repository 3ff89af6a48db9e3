"""Relay staff: accounts, login with a real TOTP, and carrying bundles through the pages."""

from __future__ import annotations

import io
import json
import re
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.cli import main
from portal.config import Config
from portal.desk import cases, replies
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskStore
from portal.staff import PASSPHRASE_WORDS, TOTP_STEP, NewAccount, StaffAccounts, diceware_passphrase
from portal.web.services import services
from tests.conftest import csrf_token, files_containing
from tests.loop import desk_outbox, submit_report


class FakeClock:
    """A controllable clock for TOTP steps and lockouts (time is the input here)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app: Flask) -> FakeClock:
    fake = FakeClock()
    app.extensions["portal"].staff.clock = fake
    return fake


@pytest.fixture
def account(app: Flask) -> NewAccount:
    with app.app_context():
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
    app: Flask, client: FlaskClient, account: NewAccount, clock: FakeClock
) -> None:
    assert "Relay log in" in client.get("/staff/").get_data(as_text=True)
    submit_report(client, "MARKER-relay")
    assert _login(client, "relay.one", account.passphrase, _code(account, clock)) == 303
    page = client.get("/staff/").get_data(as_text=True)
    assert re.search(r'id="count-envelopes">1<', page)
    assert "MARKER-relay" not in page


def test_a_totp_code_is_never_accepted_twice(
    app: Flask, client: FlaskClient, account: NewAccount, clock: FakeClock
) -> None:
    code = _code(account, clock)
    assert _login(client, "relay.one", account.passphrase, code) == 303
    other = app.test_client()
    assert _login(other, "relay.one", account.passphrase, code) == 403
    assert _login(other, "relay.one", account.passphrase, _code(account, clock, -1)) == 403
    clock.now += TOTP_STEP
    assert _login(other, "relay.one", account.passphrase, _code(account, clock)) == 303


@pytest.mark.parametrize("what", ["passphrase", "totp", "name"])
def test_wrong_credentials_are_refused(
    client: FlaskClient, account: NewAccount, clock: FakeClock, what: str
) -> None:
    name, passphrase, totp = "relay.one", account.passphrase, _code(account, clock)
    if what == "passphrase":
        passphrase = diceware_passphrase()
    elif what == "totp":
        totp = f"{(int(totp) + 1) % 1_000_000:06d}"
    else:
        name = "nobody"
    assert _login(client, name, passphrase, totp) == 403
    assert client.get("/staff/inbox.tar").status_code == 403


def test_failed_logins_are_throttled_per_account(
    app: Flask, client: FlaskClient, account: NewAccount, clock: FakeClock
) -> None:
    with app.app_context():
        services().staff.add("relay.two")
    for _ in range(5):
        assert _login(client, "relay.one", "wrong", "000000") == 403
    page = client.post(
        "/staff/login",
        data={
            "csrf_token": csrf_token(client, "/staff/"),
            "name": "relay.one",
            "passphrase": account.passphrase,
            "totp": _code(account, clock),
        },
    ).get_data(as_text=True)
    assert "paused for a while" in page  # the right credentials wait too
    clock.now += 31
    assert _login(client, "relay.one", account.passphrase, _code(account, clock)) == 303


def test_idle_staff_sessions_end(
    app: Flask, client: FlaskClient, account: NewAccount, clock: FakeClock
) -> None:
    _login(client, "relay.one", account.passphrase, _code(account, clock))
    with client.session_transaction() as sess:
        sess["staff"] = {**sess["staff"], "seen": sess["staff"]["seen"] - 31 * 60}
    assert client.get("/staff/inbox.tar").status_code == 403


def test_rehash_when_parameters_change(app: Flask, account: NewAccount, clock: FakeClock) -> None:
    from argon2 import PasswordHasher

    from portal.db import Database
    from portal.models import StaffAccount

    db: Database = app.extensions["portal"].db
    with db.transaction() as s:
        row = s.query(StaffAccount).one()
        row.password_hash = PasswordHasher(time_cost=1, memory_cost=8192).hash(account.passphrase)
    staff: StaffAccounts = app.extensions["portal"].staff
    staff.login("relay.one", account.passphrase, _code(account, clock))
    with db.reading() as s:
        assert "t=3" in s.query(StaffAccount).one().password_hash


def test_inbox_download_and_outbox_upload_through_the_pages(
    app: Flask,
    client: FlaskClient,
    account: NewAccount,
    clock: FakeClock,
    desk_keys: DeskKeys,
    tmp_path: Path,
) -> None:
    submit_report(client, "MARKER-carry")
    _login(client, "relay.one", account.passphrase, _code(account, clock))
    resp = client.get("/staff/inbox.tar")
    assert resp.status_code == 200 and resp.mimetype == "application/x-tar"
    assert b"MARKER-carry" not in resp.data
    inbox = tmp_path / "inbox.tar"
    inbox.write_bytes(resp.data)
    with tarfile.open(inbox) as tar:
        assert tar.getnames()[0] == "manifest.json"
    store = DeskStore(tmp_path / "desk")
    cases.import_inbox(store, desk_keys, inbox)
    replies.reply(store, desk_keys, cases.list_cases(store)[0]["case"], "in_review", "ok")
    outbox = desk_outbox(store, desk_keys, tmp_path / "outbox.tar")
    up = _upload_outbox(client, outbox.read_bytes())
    assert up.status_code == 200
    assert "1 reply item(s)" in up.get_data(as_text=True)
    again = _upload_outbox(client, outbox.read_bytes())
    assert again.status_code == 400 and "already imported" in again.get_data(as_text=True)
    garbage = _upload_outbox(client, b"not a tar")
    assert garbage.status_code == 400 and "Nothing was changed" in garbage.get_data(as_text=True)
    assert not list((app.extensions["portal"].config.data_dir / "relay").iterdir())


def _upload_outbox(client: FlaskClient, data: bytes) -> Any:
    """Upload an outbox file through the relay page, as staff do."""
    return client.post(
        "/staff/outbox",
        data={"csrf_token": csrf_token(client, "/staff/"), "outbox": (io.BytesIO(data), "o.tar")},
        content_type="multipart/form-data",
    )


def test_relay_can_live_on_its_own_host(config: Config) -> None:
    app = create_app(replace(config, staff_host="relay.internal"))
    c = app.test_client()
    assert c.get("/staff/").status_code == 404
    assert c.get("/staff/", base_url="http://relay.internal").status_code == 200
    assert c.get("/report", base_url="http://relay.internal").status_code == 404
    assert c.get("/report").status_code == 200


def test_staff_cli_add_list_remove(
    app: Flask, monkeypatch: pytest.MonkeyPatch, config: Config, desk_home: Path
) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(config.data_dir))
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
