"""The desk as a team uses it every day: people, what is new, case work, drafts
that survive the lock, forms that act once, safe viewing, search and statistics."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select

from portal.cli import main
from portal.desk import cases, casework, keystore, viewing
from portal.desk import evidence as desk_files
from portal.desk.custody import CustodyLog
from portal.desk.keystore import DeskKeys, KeystoreError
from portal.desk.names import case_name
from portal.desk.store import DeskStore, Draft, WitnessInvitation
from portal.desk.web import create_desk_app
from tests.harness.loop import send_follow_up, submit_report, to_desk
from tests.harness.web import CSRF, PASSPHRASE, files_containing

TOKEN = "team-token"
BEA = "Bea Okafor"
BEA_PASS = "bea's own passphrase"


@pytest.fixture
def desk_app(home: Path) -> Flask:
    return create_desk_app(home, token=TOKEN, idle_seconds=600)


@pytest.fixture
def one_case(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys, tmp_path: Path
) -> str:
    """One no-JS report ("MARKER-one"), imported on the desk: its case id."""
    store = DeskStore(home)
    submit_report(client, "MARKER-one")
    to_desk(app, store, desk_keys, tmp_path)
    return cases.list_cases(store)[0].case


def _csrf(c: FlaskClient, path: str) -> str:
    match = CSRF.search(c.get(path).get_data(as_text=True))
    assert match, path
    return match.group(1)


def _browser(
    app: Flask, person: str = "staff", passphrase: str = PASSPHRASE, code: str = ""
) -> FlaskClient:
    c = app.test_client()
    c.get(f"/?token={TOKEN}")
    resp = c.post(
        "/unlock",
        data={
            "csrf_token": _csrf(c, "/"),
            "person": person,
            "passphrase": passphrase,
            "code": code,
        },
    )
    assert resp.status_code == 303, re.findall(
        r"error-summary.*?</div>", resp.get_data(as_text=True), re.S
    )
    return c


def _with_bea(home: Path, keys: DeskKeys, **kw: Any) -> Any:
    return keystore.add_person(home, keys, BEA, BEA_PASS, cost="interactive", **kw)


def _gps_jpeg() -> bytes:
    img = Image.new("RGB", (32, 24), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0110] = "CameraModel-SECRET"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


# --- people -------------------------------------------------------------------------


def test_each_person_unlocks_with_their_own_passphrase_and_is_named_in_the_log(
    home: Path, desk_keys: DeskKeys, desk_app: Flask, one_case: str
) -> None:
    _with_bea(home, desk_keys)
    assert [p.name for p in keystore.people(home)] == ["staff", BEA]
    with pytest.raises(KeystoreError, match="not right"):
        keystore.unlock(home, PASSPHRASE, BEA)  # someone else's passphrase
    with pytest.raises(KeystoreError, match="several people"):
        keystore.unlock(home, PASSPHRASE)
    bea = keystore.unlock(home, BEA_PASS, "bea okafor")  # the name, any case
    assert bea.person == BEA and bytes(bea.signing) == bytes(desk_keys.signing)
    raw = (home / "desk.json").read_bytes()
    assert bytes(bea.signing) not in raw and BEA_PASS.encode() not in raw

    case = one_case
    c = _browser(desk_app, BEA, BEA_PASS)
    page = c.get(f"/cases/{case}").get_data(as_text=True)
    resp = c.post(
        f"/cases/{case}/reply",
        data={"csrf_token": _csrf(c, f"/cases/{case}"), "text": "hello from Bea", "once": "a" * 32},
    )
    assert resp.status_code == 303 and "MARKER-one" in page
    c.post(
        f"/cases/{case}/work",
        data={"csrf_token": _csrf(c, f"/cases/{case}"), "kind": "note", "value": "call back"},
    )
    page = c.get(f"/cases/{case}").get_data(as_text=True)
    assert page.count(BEA) >= 3  # the header, the reply and the note name her
    entries = CustodyLog(home / "custody.log").entries()
    by_event = {(e["event"], e["by"]) for e in entries}
    assert (
        ("reply", BEA) in by_event and ("note", BEA) in by_event and ("import", "staff") in by_event
    )
    assert CustodyLog(home / "custody.log").verify().ok


def test_a_removed_person_is_locked_out_at_once(
    home: Path, desk_keys: DeskKeys, desk_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_bea(home, desk_keys)
    bea = _browser(desk_app, BEA, BEA_PASS)
    assert bea.get("/cases").status_code == 200
    # Removed from the CLI while her page is open: her very next request is refused.
    monkeypatch.setenv("PORTAL_DESK_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("PORTAL_DESK_PERSON", "staff")
    out = CliRunner().invoke(main, ["desk", "people", "remove", "--home", str(home), BEA])
    assert out.exit_code == 0, out.output
    assert bea.get("/cases").status_code == 302
    assert bea.get("/people").status_code == 302
    with pytest.raises(KeystoreError):
        keystore.unlock(home, BEA_PASS, BEA)
    resp = bea.post(
        "/unlock",
        data={"csrf_token": _csrf(bea, "/"), "person": BEA, "passphrase": BEA_PASS},
    )
    assert resp.status_code == 403
    with pytest.raises(KeystoreError, match="last person"):
        keystore.remove_person(home, desk_keys, "staff")
    assert any(
        e["details"].get("removed") == BEA for e in CustodyLog(home / "custody.log").entries()
    )


def test_a_second_factor_is_required_when_set(
    home: Path, desk_keys: DeskKeys, desk_app: Flask
) -> None:
    enrolment = _with_bea(home, desk_keys, second_factor=True)
    assert enrolment is not None and enrolment.secret not in (home / "desk.json").read_text()
    with pytest.raises(KeystoreError):
        keystore.unlock(home, BEA_PASS, BEA)
    with pytest.raises(KeystoreError):
        keystore.unlock(
            home,
            BEA_PASS,
            BEA,
            "000000" if pyotp.TOTP(enrolment.secret).now() != "000000" else "111111",
        )
    assert keystore.unlock(home, BEA_PASS, BEA, pyotp.TOTP(enrolment.secret).now()).person == BEA
    code = pyotp.TOTP(enrolment.secret).now()
    _browser(desk_app, BEA, BEA_PASS, code)
    # Someone who watched her type replays the same code at once: refused.
    thief = desk_app.test_client()
    thief.get(f"/?token={TOKEN}")
    replay = thief.post(
        "/unlock",
        data={"csrf_token": _csrf(thief, "/"), "person": BEA, "passphrase": BEA_PASS, "code": code},
    )
    assert replay.status_code == 403 and thief.get("/cases").status_code == 302


def test_people_are_added_through_the_page_once_and_shown_their_second_factor_once(
    home: Path, desk_app: Flask
) -> None:
    c = _browser(desk_app)
    form = {
        "csrf_token": _csrf(c, "/people"),
        "name": BEA,
        "passphrase": BEA_PASS,
        "again": BEA_PASS,
        "second_factor": "1",
        "once": "b" * 32,
    }
    page = c.post("/people/add", data=form, follow_redirects=True).get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
    assert secret and "<svg" in page
    again = c.post("/people/add", data=form, follow_redirects=True).get_data(as_text=True)
    assert "nobody was added twice" in again
    assert [p.name for p in keystore.people(home)] == ["staff", BEA]
    keystore.unlock(home, BEA_PASS, BEA, pyotp.TOTP(secret.group(1)).now())
    mismatch = dict(form, again="other", once="c" * 32, name="Carl")
    resp = c.post("/people/add", data=mismatch)
    assert resp.status_code == 400 and "differ" in resp.get_data(as_text=True)


def test_a_desk_from_before_people_opens_as_its_one_person(tmp_path: Path, desk_home: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    desk = json.loads((desk_home / "desk.json").read_text())
    person = desk["people"][0]
    v1 = {
        "v": 1,
        "kdf": person["kdf"],
        "sealed": person["sealed"],
        "organization": desk["organization"],
    }
    (old / "desk.json").write_text(json.dumps(v1))
    keys = keystore.unlock(old, PASSPHRASE)
    assert keys.person == "staff"
    # An old desk database gains the new columns when opened.
    db = sqlite3.connect(old / "desk.sqlite")
    db.execute(
        "CREATE TABLE sent_replies (id VARCHAR(32) PRIMARY KEY, mailbox_id VARCHAR(32), "
        "seq INTEGER, written_on DATE, for_reporter BLOB, for_desk BLOB, "
        "exported_in INTEGER, confirmed BOOLEAN)"
    )
    db.commit()
    db.close()
    DeskStore(old)
    columns = {
        r[1]
        for r in sqlite3.connect(old / "desk.sqlite").execute("PRAGMA table_info(sent_replies)")
    }
    assert {"by", "written_at"} <= columns


# --- what is new ---------------------------------------------------------------------


def test_what_is_new_is_per_person_and_the_list_follows_activity(
    app: Flask,
    client: FlaskClient,
    home: Path,
    desk_keys: DeskKeys,
    desk_app: Flask,
    tmp_path: Path,
) -> None:
    _with_bea(home, desk_keys)
    store = DeskStore(home)
    first_code = submit_report(client, "MARKER-first")
    to_desk(app, store, desk_keys, tmp_path)
    first = cases.list_cases(store)[0]
    submit_report(client, "MARKER-second")
    to_desk(app, store, desk_keys, tmp_path)
    rows = cases.list_cases(store, desk_keys)
    assert all(r.new for r in rows)
    assert re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\Z", rows[0].last_at)

    staff = _browser(desk_app)
    listing = staff.get("/cases").get_data(as_text=True)
    assert listing.count("New case") == 2 and "2 cases have something new for you" in listing
    staff.get(f"/cases/{first.case}")
    assert "1 case has something new" in staff.get("/cases").get_data(as_text=True)
    bea = _browser(desk_app, BEA, BEA_PASS)
    assert bea.get("/cases").get_data(as_text=True).count("New case") == 2

    # A follow-up in the first case: new for staff (1 item), the case goes to the top.
    send_follow_up(client, first_code, "MARKER-later detail")
    time.sleep(1.1)  # times are kept to the second: the follow-up is the latest activity
    to_desk(app, store, desk_keys, tmp_path)
    rows = cases.list_cases(store, keystore.unlock(home, PASSPHRASE, "staff"))
    top = rows[0]
    assert top.case == first.case and top.unread == (("message", 1),) and not top.new
    listing = staff.get("/cases?show=unread").get_data(as_text=True)
    assert "1 new item" in listing and first.case in listing
    page = staff.get(f"/cases/{first.case}").get_data(as_text=True)
    assert page.count('class="new-mark"') == 1  # only the follow-up is marked new
    assert (
        first.case not in staff.get("/cases?show=unread").get_data(as_text=True).split("<table")[-1]
    )


# --- case work, search and filters ---------------------------------------------------


def test_tags_assignment_due_dates_notes_and_search(
    app: Flask,
    client: FlaskClient,
    home: Path,
    desk_keys: DeskKeys,
    desk_app: Flask,
    tmp_path: Path,
) -> None:
    _with_bea(home, desk_keys)
    store = DeskStore(home)
    code = submit_report(client, "MARKER-plain report")
    send_follow_up(client, code, "the roadblock near Zarqa")
    submit_report(client, "another report")
    to_desk(app, store, desk_keys, tmp_path)
    target = next(r.case for r in cases.list_cases(store) if r.envelopes == 2)
    c = _browser(desk_app)
    token = _csrf(c, f"/cases/{target}")
    for kind, value in (
        ("tags", "detention, =cmd|' /C calc'!A0"),
        ("assign", BEA),
        ("due", "2020-01-31"),
        ("note", "MARKER-note internal only"),
    ):
        resp = c.post(
            f"/cases/{target}/work", data={"csrf_token": token, "kind": kind, "value": value}
        )
        assert resp.status_code == 303, (kind, resp.get_data(as_text=True)[:400])
    bad = c.post(
        f"/cases/{target}/work",
        data={"csrf_token": token, "kind": "assign", "value": "Nobody Known"},
    )
    assert bad.status_code == 400 and "not a person" in bad.get_data(as_text=True)
    empty = c.post(
        f"/cases/{target}/work", data={"csrf_token": token, "kind": "note", "value": "  "}
    )
    assert empty.status_code == 400

    def listed(query: str) -> str:
        return c.get(f"/cases?{query}").get_data(as_text=True).split("<table")[-1]

    assert target in listed("tag=detention") and listed("tag=detention").count("data-case=") == 1
    assert target in listed(f"assignee={BEA}") and target in listed("show=overdue")
    assert target in listed("due_by=2020-02-01") and "data-case" not in listed("due_by=2019-01-01")
    bea = _browser(desk_app, BEA, BEA_PASS)
    assert target in bea.get("/cases?show=mine").get_data(as_text=True)

    found = c.get("/cases?q=roadblock+zarqa").get_data(as_text=True)
    assert "follow-up" in found and "Zarqa" in found and case_name(target) in found
    assert "note" in c.get("/cases?q=internal").get_data(as_text=True)
    assert "0 places hold" in c.get("/cases?q=nowhere-to-be-found").get_data(as_text=True)
    for marker in (b"Zarqa", b"MARKER-note", b"detention", b"roadblock"):
        assert files_containing(home, marker) == [], marker
    search_entries = [
        e for e in CustodyLog(home / "custody.log").entries() if e["event"] == "search"
    ]
    assert search_entries and all("zarqa" not in json.dumps(e).lower() for e in search_entries)

    csv = c.get("/stats.csv").get_data(as_text=True)
    assert (
        "tag,'=cmd|' /C calc'!A0,1" in csv and "tag,detention,1" in csv and "cases,total,2" in csv
    )
    stats_page = c.get("/stats").get_data(as_text=True)
    assert stats_page.count("<svg") == 4 and "<script" not in stats_page

    # Resolving by the case's name works in the CLI too, and the text names status and files.
    runner = CliRunner()
    env = {"PORTAL_DESK_PASSPHRASE": PASSPHRASE, "PORTAL_DESK_PERSON": "staff"}
    shown = runner.invoke(main, ["desk", "show", "--home", str(home), case_name(target)], env=env)
    assert shown.exit_code == 0 and "Zarqa" in shown.output and "note by staff" in shown.output
    listing = runner.invoke(main, ["desk", "cases", "--home", str(home)], env=env)
    assert case_name(target) in listing.output and f"assigned to {BEA}" in listing.output


# --- never lose work -------------------------------------------------------------------


def test_a_reply_written_past_the_idle_lock_comes_back_after_unlocking(
    home: Path, desk_keys: DeskKeys, desk_app: Flask, one_case: str
) -> None:
    store = DeskStore(home)
    case = one_case
    c = _browser(desk_app)
    token = _csrf(c, f"/cases/{case}")
    desk_app.extensions["desk"].idle_seconds = 0  # the reply took longer than the lock
    words = "MARKER-draft a long careful reply, written slowly"
    resp = c.post(
        f"/cases/{case}/reply", data={"csrf_token": token, "text": words, "once": "d" * 32}
    )
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/?next=")
    assert files_containing(home, b"MARKER-draft") == []  # kept sealed, not in the clear
    with store.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Draft)) == 1
    desk_app.extensions["desk"].idle_seconds = 600
    resp = c.post(
        "/unlock",
        data={
            "csrf_token": token,
            "passphrase": PASSPHRASE,
            "person": "",
            "next": f"/cases/{case}",
        },
    )
    assert resp.headers["Location"] == f"/cases/{case}"
    page = c.get(f"/cases/{case}").get_data(as_text=True)
    assert words in page and 'id="draft-restored"' in page
    # An empty reply is refused on the same page; nothing typed is lost.
    resp = c.post(f"/cases/{case}/reply", data={"csrf_token": token, "text": "  "})
    assert resp.status_code == 400 and 'id="reply-error"' in resp.get_data(as_text=True)
    long = "x" * 20_001
    resp = c.post(f"/cases/{case}/reply", data={"csrf_token": token, "text": long})
    assert resp.status_code == 400 and long in resp.get_data(as_text=True)
    resp = c.post(
        f"/cases/{case}/reply", data={"csrf_token": token, "text": words, "once": "e" * 32}
    )
    assert resp.status_code == 303
    again = c.post(
        f"/cases/{case}/reply", data={"csrf_token": token, "text": words, "once": "e" * 32}
    )
    assert "again=1" in again.headers["Location"]
    assert len(store.replies(case)) == 1
    with store.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Draft)) == 0


def test_refreshing_an_invitation_never_makes_a_second_one(
    home: Path, desk_keys: DeskKeys, desk_app: Flask, one_case: str
) -> None:
    store = DeskStore(home)
    about = one_case
    c = _browser(desk_app)
    c.post(
        "/settings",
        data={
            "csrf_token": _csrf(c, "/settings"),
            "onion_address": "a" * 56 + ".onion",
            "web_address": "https://report.example.org",
        },
    )
    form = {
        "csrf_token": _csrf(c, f"/invite?case={about}"),
        "questions": "What did you see?",
        "concerns": about,
        "language": "ar",
        "once": "f" * 32,
    }
    resp = c.post("/invite", data=form)
    assert resp.status_code == 303
    first = c.get(resp.headers["Location"]).get_data(as_text=True)
    second = c.get(resp.headers["Location"]).get_data(as_text=True)  # a refresh
    code = re.search(r'id="invitation-code">([0-9 ]+)<', first)
    assert code and code.group(1) in second
    assert "a" * 56 + ".onion" in first and "https://report.example.org" in first
    assert 'lang="ar" dir="rtl"' in first  # the witness's sheet, in their language
    resent = c.post("/invite", data=form)  # Back and send again
    assert resent.headers["Location"] == resp.headers["Location"]
    with store.db.reading() as s:
        rows = list(s.scalars(select(WitnessInvitation)))
    assert len(rows) == 1 and rows[0].concerns == about
    case_page = c.get(f"/cases/{about}").get_data(as_text=True)
    assert case_name(rows[0].mailbox_id) in case_page
    c.post(f"/invitations/{rows[0].mailbox_id}/forget", data={"csrf_token": form["csrf_token"]})
    gone = c.get(resp.headers["Location"]).get_data(as_text=True)
    assert code.group(1) not in gone and 'id="code-gone"' in gone
    assert files_containing(home, code.group(1).replace(" ", "").encode()) == []


# --- safe viewing and language ---------------------------------------------------------


def test_pictures_are_held_back_cleaned_and_flagged_for_location(
    app: Flask,
    client: FlaskClient,
    home: Path,
    desk_keys: DeskKeys,
    desk_app: Flask,
    tmp_path: Path,
) -> None:
    photo = _gps_jpeg()
    submit_report(client, "شاهدت الاعتقال عند الحاجز", [(photo, "photo.jpg")])  # no JS: GPS kept
    store = DeskStore(home)
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    c = _browser(desk_app)
    page = c.get(f"/cases/{case}").get_data(as_text=True)
    assert "<img" not in page  # held back until asked for
    assert "Content warning" in page and "location-flag" in page
    assert 'dir="auto"' in page.split("شاهدت")[0].rsplit("<dd", 1)[1]
    view = re.search(r'href="(/cases/[0-9a-f]+/files/[0-9a-f]+/view)"', page)
    assert view
    shown = c.get(view.group(1)).get_data(as_text=True)
    assert "<img" in shown and "Content warning" in shown
    clean = c.get(view.group(1) + "?raw=1")
    assert clean.status_code == 200 and clean.mimetype in ("image/jpeg", "image/png")
    assert b"CameraModel-SECRET" not in clean.data and b"Exif" not in clean.data
    assert Image.open(io.BytesIO(clean.data)).size == (32, 24)
    download = re.search(r'href="(/cases/[0-9a-f]+/files/[0-9a-f]+)"', page)
    assert download
    original = c.get(download.group(1))
    assert original.data == photo and original.mimetype == "application/octet-stream"
    assert f"{case_name(case)}_item1_photo.jpg" in original.headers["Content-Disposition"]
    # A picture larger than the viewer takes is refused by its sealed size, before
    # a byte of it is decrypted into memory.
    upload = download.group(1).rsplit("/", 1)[1]
    found = cases.case_file(store, desk_keys, case, upload)
    huge = dataclasses.replace(found, size=viewing.MAX_INPUT_BYTES + 1)
    store.blobs.path(str(desk_files.locate(store, found))).unlink()  # nothing left to read
    with pytest.raises(viewing.UnsafeImage, match="too large"):
        desk_files.picture(store, huge)


def test_the_desk_speaks_the_portal_languages(desk_app: Flask) -> None:
    c = desk_app.test_client()
    c.get(f"/?token={TOKEN}")
    c.get("/language/ar?next=/")
    page = c.get("/").get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in page and "Unlock the desk" not in page
    c.get("/language/fr?next=/")
    assert '<html lang="fr" dir="ltr">' in c.get("/").get_data(as_text=True)
    assert c.get("/language/xx?next=//evil.example").headers["Location"] == "/cases"


def test_the_reporters_language_is_sealed_with_the_report(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    client.set_cookie("portal_lang", "ar")
    submit_report(client, "MARKER-lang")
    store = DeskStore(home)
    to_desk(app, store, desk_keys, tmp_path)
    shown = cases.show_case(store, desk_keys, cases.list_cases(store)[0].case)
    assert shown.items[0].lang == "ar"


def test_work_is_sealed_and_a_draft_for_another_place_is_refused(
    home: Path, desk_keys: DeskKeys
) -> None:
    store = DeskStore(home)
    with pytest.raises(casework.WorkRefused):
        casework.save_draft(store, desk_keys.organization, "staff", "../../etc", "x")
    casework.save_draft(
        store, desk_keys.organization, "staff", "reply:" + "a" * 32, "MARKER-sealed"
    )
    assert files_containing(home, b"MARKER-sealed") == []
    kept = casework.drafts(store, desk_keys)
    assert kept == {"reply:" + "a" * 32: casework.Kept("MARKER-sealed", {})}


def test_unlocking_always_starts_a_new_visit(desk_app: Flask) -> None:
    """A visit id planted before unlocking (session fixation) never becomes an
    unlocked visit, and locking ends what the old id could do."""
    c = desk_app.test_client()
    c.get(f"/?token={TOKEN}")
    c.set_cookie("desk_sid", "planted-by-someone-else")
    resp = c.post(
        "/unlock", data={"csrf_token": _csrf(c, "/"), "person": "", "passphrase": PASSPHRASE}
    )
    assert resp.status_code == 303
    new = c.get_cookie("desk_sid")
    assert new is not None and new.value != "planted-by-someone-else"
    visits = desk_app.extensions["desk"].visits
    assert "planted-by-someone-else" not in visits and visits[new.value].keys is not None
    c.post("/lock", data={"csrf_token": _csrf(c, "/cases")})
    assert visits[new.value].keys is None and c.get("/cases").status_code == 302


def test_a_weak_passphrase_is_refused_for_anyone(home: Path, desk_keys: DeskKeys) -> None:
    for weak in ("x", "short pass", "aaaaaaaaaaaaaaaa"):
        with pytest.raises(KeystoreError, match="at least 12 characters"):
            keystore.add_person(home, desk_keys, "Eve", weak, cost="interactive")
    _with_bea(home, desk_keys)
    bea = keystore.unlock(home, BEA_PASS, BEA)
    with pytest.raises(KeystoreError, match="12 characters"):
        keystore.change_passphrase(home, bea, BEA_PASS, "z")
    with pytest.raises(KeystoreError, match="nothing was changed"):
        keystore.change_passphrase(home, bea, "not her passphrase", "a much longer one now")


def test_removing_a_person_asks_first_and_unassigns_their_cases(
    home: Path, desk_keys: DeskKeys, desk_app: Flask, one_case: str
) -> None:
    _with_bea(home, desk_keys)
    c = _browser(desk_app)
    token = _csrf(c, f"/cases/{one_case}")
    c.post(f"/cases/{one_case}/work", data={"csrf_token": token, "kind": "assign", "value": BEA})
    confirm = c.get(f"/people/remove?name={BEA}").get_data(as_text=True)
    assert "Yes, remove" in confirm and [p.name for p in keystore.people(home)] == ["staff", BEA]
    c.post("/people/remove", data={"csrf_token": token, "name": BEA})
    assert [p.name for p in keystore.people(home)] == ["staff"]
    rows = cases.list_cases(DeskStore(home), keystore.unlock(home, PASSPHRASE))
    assert rows[0].assignee is None


def test_words_and_choices_survive_the_lock_and_can_be_thrown_away(
    home: Path, desk_app: Flask, one_case: str
) -> None:
    c = _browser(desk_app)
    token = _csrf(c, f"/cases/{one_case}")
    desk_app.extensions["desk"].idle_seconds = 0
    c.post(
        f"/cases/{one_case}/reply",
        data={"csrf_token": token, "text": "MARKER-kept words", "status": "more_info"},
    )
    c.post(
        "/invite",
        data={
            "csrf_token": token,
            "questions": "Who was there?",
            "language": "fr",
            "concerns": one_case,
        },
    )
    # A form that only exists as a POST sends you back to its page, not to a 405.
    resp = c.post("/people/add", data={"csrf_token": token, "name": "X"})
    assert resp.status_code == 302 and "next=/people" in resp.headers["Location"]
    desk_app.extensions["desk"].idle_seconds = 600
    unlock = c.post(
        "/unlock",
        data={"csrf_token": token, "passphrase": PASSPHRASE, "person": "", "next": "/people/add"},
    )
    assert c.get(unlock.headers["Location"]).status_code == 200
    page = c.get(f"/cases/{one_case}").get_data(as_text=True)
    assert "MARKER-kept words" in page and '<option value="more_info" selected>' in page
    invite = c.get(f"/invite?case={one_case}").get_data(as_text=True)
    assert "Who was there?" in invite and '<option value="fr" lang="fr" selected>' in invite
    c.post(f"/cases/{one_case}/drafts/discard", data={"csrf_token": token, "kind": "reply"})
    page = c.get(f"/cases/{one_case}").get_data(as_text=True)
    assert "MARKER-kept words" not in page and 'id="draft-restored"' not in page
    assert c.get("/no/such/page").status_code == 404


def test_search_finds_a_case_whose_words_are_in_different_items() -> None:
    sources = [
        ("c1", "report", "my brother was taken"),
        ("c1", "message", "he was moved to the north"),
        ("c2", "report", "my brother is safe"),
    ]
    hits = casework.matches(sources, "brother moved")
    assert {(h.case, h.where) for h in hits} == {("c1", "report"), ("c1", "message")}
    assert casework.matches(sources, "brother north safe") == []
