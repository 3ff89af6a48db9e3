"""The desk: custody log, web interface (token, unlock, import, read, reply, invite,
export) and one process per home."""

from __future__ import annotations

import io
import itertools
import json
import re
import tarfile
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from portal.cli import main
from portal.desk import cases, replies
from portal.desk.custody import CustodyLog
from portal.desk.keystore import DeskKeys
from portal.desk.lock import DeskBusy, desk_lock
from portal.desk.store import DeskStore
from portal.desk.web import create_desk_app
from portal.protocol import codes
from portal.protocol.encoding import b64encode
from portal.protocol.organization import Organization
from portal.server.inbox import export_inbox
from portal.server.web.services import services
from tests.harness.loop import desk_outbox, submit_report, to_desk, to_portal
from tests.harness.sealing import browser_style_request
from tests.harness.web import CSRF, PASSPHRASE, api_post

TOKEN = "launch-token-for-tests"


# --- custody log ----------------------------------------------------------------


def _busy_log(app: Flask, client: FlaskClient, home: Path, keys: DeskKeys, tmp: Path) -> CustodyLog:
    store = DeskStore(home)
    submit_report(client, "report")
    to_desk(app, store, keys, tmp)
    case = cases.list_cases(store)[0].case
    cases.show_case(store, keys, case)
    replies.reply(store, keys, case, "in_review", "thanks")
    replies.invite(store, keys, "questions")
    to_portal(app, desk_outbox(store, keys, tmp / "outbox.tar"))
    return store.custody


def test_every_desk_action_is_logged_in_a_chain(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    log = _busy_log(app, client, home, desk_keys, tmp_path)
    events = [e["event"] for e in log.entries()]
    assert events == ["import", "view", "reply", "invite", "export"]
    assert log.verify().ok and log.verify().entries == 5
    entries = log.entries()
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(entries))
    assert len(entries[0]["details"]["new"]) == 1 and "sha256" in entries[0]["details"]["new"][0]
    exported = entries[4]["details"]["items"]
    assert exported and all(re.fullmatch(r"[0-9a-f]{64}", i["sha256"]) for i in exported)
    # The head the desk signed for that outbox covers the export entry itself.
    assert DeskStore(home).checkpoints()[-1]["n"] == 5
    # No plaintext in the log: replies and questions are referred to by hash only.
    assert b"thanks" not in log.path.read_bytes() and b"questions" not in log.path.read_bytes()


@pytest.mark.parametrize("tamper", ["edit", "delete", "swap", "truncate-line"])
def test_a_tampered_log_names_the_first_broken_entry(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys, tmp_path: Path, tamper: str
) -> None:
    log = _busy_log(app, client, home, desk_keys, tmp_path)
    lines = log.path.read_text().splitlines(keepends=True)
    if tamper == "edit":
        lines[2] = lines[2].replace('"in_review"', '"closed"')
        expected = 3
    elif tamper == "delete":
        del lines[1]
        expected = 2
    elif tamper == "swap":
        lines[1], lines[2] = lines[2], lines[1]
        expected = 2
    else:
        lines[3] = lines[3][:20] + "\n"
        expected = 4
    log.path.write_text("".join(lines))
    result = log.verify()
    assert result.first_broken == expected
    out = CliRunner().invoke(main, ["desk", "verify-log", "--home", str(home)])
    assert out.exit_code != 0 and f"broken at entry {expected}" in out.output


def test_verify_log_cli_on_an_intact_log(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    _busy_log(app, client, home, desk_keys, tmp_path)
    out = CliRunner().invoke(main, ["desk", "verify-log", "--home", str(home)])
    assert out.exit_code == 0 and "5 entries" in out.output


# --- one change at a time per home --------------------------------------------------


def test_changes_wait_for_each_other_and_reading_never_waits(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI and `desk serve` share a home: a change waits while another runs,
    reading does not wait at all, and a change held for too long is named."""
    monkeypatch.setenv("PORTAL_DESK_PASSPHRASE", PASSPHRASE)
    with desk_lock(home):
        with (
            pytest.raises(DeskBusy, match="busy with another desk operation"),
            desk_lock(home, wait=0.2),
        ):
            pass
        out = CliRunner().invoke(main, ["desk", "cases", "--home", str(home)])
        assert out.exit_code == 0, out.output  # reading: no lock needed
    released = threading.Event()

    def hold() -> None:
        with desk_lock(home):
            released.wait(0.5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    started = time.monotonic()
    with desk_lock(home, wait=10):
        waited = time.monotonic() - started
    holder.join()
    assert 0.2 < waited < 5


# --- the web interface -----------------------------------------------------------


@pytest.fixture
def desk_app(home: Path) -> Flask:
    return create_desk_app(home, token=TOKEN, idle_seconds=600)


def _token(client: FlaskClient, path: str) -> str:
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match
    return match.group(1)


def _unlocked(desk_app: Flask) -> FlaskClient:
    c = desk_app.test_client()
    assert c.get(f"/?token={TOKEN}").status_code == 302
    resp = c.post(
        "/unlock", data={"csrf_token": _token(c, "/"), "passphrase": PASSPHRASE, "person": ""}
    )
    assert resp.status_code == 303
    return c


def test_requests_without_the_launch_token_are_refused(desk_app: Flask) -> None:
    c = desk_app.test_client()
    for path in ("/", "/cases", "/import", "/export"):
        assert c.get(path).status_code == 403
    assert c.get("/?token=wrong").status_code == 403
    assert c.get("/?token=t%C3%B6ken-%E2%80%AE").status_code == 403  # non-ASCII: no 500
    c.set_cookie("desk_token", "jeton-é")
    assert c.get("/cases").status_code == 403
    resp = c.get(f"/?token={TOKEN}")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert "HttpOnly" in resp.headers["Set-Cookie"]
    assert c.get("/").status_code == 200


def test_wrong_passphrase_unlocks_nothing(desk_app: Flask) -> None:
    c = desk_app.test_client()
    c.get(f"/?token={TOKEN}")
    resp = c.post("/unlock", data={"csrf_token": _token(c, "/"), "passphrase": "wrong"})
    assert resp.status_code == 403
    assert c.get("/cases").status_code == 302  # back to the unlock page


def test_import_read_reply_invite_export_through_the_pages(
    app: Flask, client: FlaskClient, desk_app: Flask, tmp_path: Path
) -> None:
    submit_report(client, "MARKER-desk what happened <i>here</i>")
    inbox = tmp_path / "inbox.tar"
    with app.app_context():
        export_inbox(services().mailboxes, services().organization, inbox)
    c = _unlocked(desk_app)
    resp = c.post(
        "/import",
        data={
            "csrf_token": _token(c, "/import"),
            "inbox": (io.BytesIO(inbox.read_bytes()), "inbox.tar"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert resp.status_code == 200 and "Imported 1 new envelope" in resp.get_data(as_text=True)
    listing = c.get("/cases?show=unanswered").get_data(as_text=True)
    case_id = re.search(r'data-case="([0-9a-f]{32})"', listing).group(1)  # type: ignore[union-attr]
    page = c.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "What happened?" in page  # laid out with the form's labels
    assert "MARKER-desk what happened &lt;i&gt;here&lt;/i&gt;" in page
    assert "sealed by the server on arrival" in page and "the portal's word" in page
    resp = c.post(
        f"/cases/{case_id}/reply",
        data={
            "csrf_token": _token(c, f"/cases/{case_id}"),
            "status": "legal_aid",
            "text": "We will help.",
        },
    )
    assert resp.status_code == 303
    page = c.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "We will help." in page and "Referred to legal aid" in page
    assert case_id not in c.get("/cases?show=unanswered").get_data(as_text=True)
    assert case_id in c.get("/cases?show=legal_aid").get_data(as_text=True)

    resp = c.post(
        "/invite",
        data={"csrf_token": _token(c, "/invite"), "questions": "Who?", "once": "f" * 32},
        follow_redirects=True,
    )
    shown = re.search(r'id="invitation-code">([0-9 ]{29})<', resp.get_data(as_text=True))
    assert shown and codes.normalise(shown.group(1))

    resp = c.post("/export", data={"csrf_token": _token(c, "/export")})
    assert resp.status_code == 200 and resp.mimetype == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(resp.data)) as tar:
        names = tar.getnames()
    assert names[:2] == ["manifest.json", "manifest.sig"]
    outbox = tmp_path / "outbox.tar"
    outbox.write_bytes(resp.data)
    result = to_portal(app, outbox)
    assert (result.replies, result.invitations, result.acked) == (2, 1, 1)


def test_a_corrupted_bundle_is_refused_on_the_page(desk_app: Flask) -> None:
    c = _unlocked(desk_app)
    resp = c.post(
        "/import",
        data={
            "csrf_token": _token(c, "/import"),
            "inbox": (io.BytesIO(b"garbage" * 100), "inbox.tar"),
        },
        content_type="multipart/form-data",
    )
    assert resp.status_code == 400 and "nothing imported" in resp.get_data(as_text=True)


def test_lock_and_idle_lock_drop_the_keys(desk_app: Flask) -> None:
    c = _unlocked(desk_app)
    assert c.get("/cases").status_code == 200
    c.post("/lock", data={"csrf_token": _token(c, "/cases")})
    assert c.get("/cases").status_code == 302
    c = _unlocked(desk_app)
    desk_app.extensions["desk"].idle_seconds = 0
    assert c.get("/cases").status_code == 302
    assert all(v.keys is None for v in desk_app.extensions["desk"].visits.values())


def test_the_desk_pages_carry_the_security_headers(desk_app: Flask) -> None:
    c = desk_app.test_client()
    resp = c.get(f"/?token={TOKEN}")
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert c.get("/").headers["Cache-Control"] == "no-store"


def test_desk_files_hold_no_plaintext(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    store = DeskStore(home)
    submit_report(client, "MARKER-at-rest")
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    cases.show_case(store, desk_keys, case)
    replies.reply(store, desk_keys, case, None, "MARKER-reply-at-rest")
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"MARKER-at-rest" not in data and b"MARKER-reply-at-rest" not in data, path
    assert json.loads((home / "organization.json").read_text())["name"]


def test_desk_commands_need_no_portal_configuration(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On the air-gapped machine there is no portal, no key file and no data dir.
    monkeypatch.chdir(tmp_path)
    for name in ("PORTAL_KEYS", "PORTAL_DATA_DIR", "PORTAL_DEMO"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORTAL_DESK_PASSPHRASE", PASSPHRASE)
    runner = CliRunner()
    out = runner.invoke(main, ["desk", "cases", "--home", str(home), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == []
    out = runner.invoke(
        main,
        [
            "desk",
            "init",
            "--home",
            str(tmp_path / "new"),
            "--cost",
            "interactive",
            "--name",
            "Field Office",
        ],
    )
    assert out.exit_code == 0, out.output
    assert not (tmp_path / "instance").exists()


def test_junk_is_shown_aside_and_discarded_through_the_pages(
    app: Flask, client: FlaskClient, desk_app: Flask, org: Organization, tmp_path: Path
) -> None:
    """A flood of right-shaped junk: kept aside, never acknowledged, until staff discard it."""
    for _ in range(2):
        _, junk = browser_style_request(org, "x")
        junk["envelope"]["body"] = b64encode(bytes(1024 + 40))
        assert api_post(client, "/api/reports", junk).status_code == 201
    submit_report(client, "MARKER-real")
    inbox = tmp_path / "inbox.tar"
    with app.app_context():
        export_inbox(services().mailboxes, services().organization, inbox)
    c = _unlocked(desk_app)
    page = c.post(
        "/import",
        data={
            "csrf_token": _token(c, "/import"),
            "inbox": (io.BytesIO(inbox.read_bytes()), "i.tar"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Imported 1 new envelope" in page and "2 items failed their checks" in page
    aside = c.get("/damaged").get_data(as_text=True)
    ids = re.findall(r'name="item" value="([0-9a-f]+)"', aside)
    assert len(ids) == 2 and "does not open" in aside
    listing = c.get("/cases").get_data(as_text=True)
    assert listing.count("data-case=") == 1  # junk makes no case
    resp = c.post("/damaged/discard", data={"csrf_token": _token(c, "/damaged"), "item": ids})
    assert resp.status_code == 303
    assert "discarded" in c.get("/damaged").get_data(as_text=True)
    with tarfile.open(
        fileobj=io.BytesIO(c.post("/export", data={"csrf_token": _token(c, "/export")}).data)
    ) as tar:
        ack = next(m for m in tar.getmembers() if m.name.startswith("acks/"))
        discarded = json.loads(tar.extractfile(ack).read())["discard"]  # type: ignore[union-attr]
        assert sorted(d["sha256"] for d in discarded) == sorted(ids)
