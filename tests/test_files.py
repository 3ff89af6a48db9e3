"""Evidence files: the no-JS path, the upload API, the desk's checks and saving."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.cli import main
from portal.desk import cases
from portal.desk import evidence as desk_files
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskStore
from portal.protocol.filecrypt import CHUNK, EncryptingWriter
from portal.protocol.organization import Organization
from portal.server.app import create_app
from portal.server.config import Config
from portal.server.mailboxes import attachment_blob
from portal.server.models import Attachment, Mailbox
from portal.server.uploads import STALLED_SECONDS
from portal.server.web.services import services
from tests.harness.live import fresh_desk_copy
from tests.harness.loop import CODE_ON_PAGE, open_case, submit_report, to_desk
from tests.harness.sealing import browser_style_request
from tests.harness.web import PASSPHRASE, api_post, csrf_token, files_containing


def _evidence(size: int, tag: bytes) -> bytes:
    return tag + os.urandom(max(0, size - len(tag)))


def _no_js_report(
    client: FlaskClient, files: list[tuple[bytes, str]], text: str = "with files"
) -> Any:
    data: dict[str, Any] = {
        "csrf_token": csrf_token(client),
        "what_happened": text,
        "files": [(io.BytesIO(b), name) for b, name in files],
    }
    return client.post(
        "/report", data=data, content_type="multipart/form-data", follow_redirects=True
    )


def _attachments(app: Flask) -> list[Attachment]:
    with app.app_context(), services().db.reading() as s:
        return list(s.scalars(select(Attachment)))


def test_no_js_files_are_encrypted_on_arrival_and_saved_identical_on_the_desk(
    app: Flask,
    client: FlaskClient,
    config: Config,
    desk_keys: DeskKeys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(spool))
    photo = _evidence(3 * CHUNK + 11, b"MARKER-photo")
    doc = _evidence(700_000, b"MARKER-doc")
    resp = _no_js_report(client, [(photo, "../../etc/photo.jpg"), (doc, "statement.pdf")])
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    assert CODE_ON_PAGE.search(resp.get_data(as_text=True))
    for root in (config.data_dir, spool):
        assert files_containing(root, b"MARKER-photo") == []
        assert files_containing(root, b"MARKER-doc") == []
    assert len(_attachments(app)) == 2

    store = DeskStore(tmp_path / "desk")
    result = to_desk(app, store, desk_keys, tmp_path)
    assert result.files == 2
    shown = cases.show_case(store, desk_keys, cases.list_cases(store)[0].case)
    states = {f["name"]: f["state"] for f in shown.items[0].files}
    assert states == {"../../etc/photo.jpg": "verified", "statement.pdf": "verified"}
    out = tmp_path / "saved"
    saved = desk_files.save_files(
        store,
        shown.case,
        desk_files.files_of(shown.items[0].content, shown.case),
        out,
        "tester",
    )
    assert sorted(n for n, _ in saved.saved) == ["photo.jpg", "statement.pdf"]
    assert (out / "photo.jpg").read_bytes() == photo
    assert (out / "statement.pdf").read_bytes() == doc
    sums = (out / "SHA256SUMS").read_text().splitlines()
    assert f"{hashlib.sha256(photo).hexdigest()}  photo.jpg" in sums
    assert store.custody.entries()[-1]["event"] == "save"


def test_a_message_may_be_a_file_alone_but_not_nothing(
    app: Flask, client: FlaskClient, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    """A photo found after the report goes to the case without words; a message
    with neither words nor files is refused, and says it wants one or the other."""
    open_case(client, submit_report(client, "report"))

    def send(files: list[tuple[bytes, str]]) -> Any:
        data: dict[str, Any] = {
            "csrf_token": csrf_token(client, "/case"),
            "message": "  ",
            "files": [(io.BytesIO(b), name) for b, name in files],
        }
        return client.post("/case/message", data=data, content_type="multipart/form-data")

    refused = send([])
    assert refused.status_code == 400
    assert "Please write a message or add a file first." in refused.get_data(as_text=True)
    assert "Your words are still in the box below." not in refused.get_data(as_text=True)
    photo = _evidence(50_000, b"MARKER-later")
    assert send([(photo, "later.jpg")]).status_code == 303
    store = DeskStore(tmp_path / "desk")
    assert to_desk(app, store, desk_keys, tmp_path).files == 1
    shown = cases.show_case(store, desk_keys, cases.list_cases(store)[0].case)
    assert [i.kind for i in shown.items] == ["report", "message"]
    assert [(f["name"], f["state"]) for f in shown.items[1].files] == [("later.jpg", "verified")]


@pytest.mark.parametrize("case_open", [True, False])
def test_a_refused_message_says_its_files_must_be_chosen_again(
    client: FlaskClient, case_open: bool
) -> None:
    """A no-JS message refused (left empty with the case open, or after the case
    closed) gives its words back; its files cannot be, and the page says so."""
    open_case(client, submit_report(client, "report"))
    token = csrf_token(client, "/case")
    if not case_open:
        with client.session_transaction() as sess:
            sess["case"] = {**sess["case"], "seen": sess["case"]["seen"] - 3600}
    data: dict[str, Any] = {
        "csrf_token": token,
        "message": "x" * 50_001 if case_open else "the words",
        "files": [(io.BytesIO(b"MARKER-photo"), "photo.jpg")],
    }
    resp = client.post("/case/message", data=data, content_type="multipart/form-data")
    assert resp.status_code == (400 if case_open else 403)
    assert "Your files were not kept: please choose them again." in resp.get_data(as_text=True)


def test_a_tampered_blob_is_reported_damaged_and_never_written(
    app: Flask, client: FlaskClient, desk_keys: DeskKeys, tmp_path: Path, desk_home: Path
) -> None:
    good, bad = _evidence(5000, b"good"), _evidence(CHUNK + 5, b"bad")
    assert _no_js_report(client, [(good, "good.txt"), (bad, "bad.bin")]).status_code == 200
    home = fresh_desk_copy(desk_home, tmp_path / "desk")
    store = DeskStore(home)
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    content = cases.show_case(store, desk_keys, case).items[0].content
    target = next(f for f in desk_files.files_of(content, case) if f.name == "bad.bin")
    path = store.blobs.path(str(desk_files.locate(store, target)))
    blob = bytearray(path.read_bytes())
    blob[CHUNK // 2] ^= 0x01
    path.write_bytes(bytes(blob))
    shown = cases.show_case(store, desk_keys, case)
    assert {f["name"]: f["state"] for f in shown.items[0].files} == {
        "good.txt": "verified",
        "bad.bin": "damaged",
    }
    out = tmp_path / "out"
    result = CliRunner(env={"PORTAL_DESK_PASSPHRASE": PASSPHRASE}).invoke(
        main, ["desk", "save", case, "--home", str(home), "--out", str(out)]
    )
    assert result.exit_code != 0 and "DAMAGED" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["SHA256SUMS", "good.txt"]
    assert (out / "good.txt").read_bytes() == good


@pytest.mark.parametrize("problem", ["empty", "too_many", "too_large"])
def test_bad_files_without_js_store_nothing(app: Flask, config: Config, problem: str) -> None:
    small = create_app(replace(config, max_files=2, max_file_bytes=20_000))
    client = small.test_client()
    files = {
        "empty": [(b"", "empty.txt")],
        "too_many": [(b"a", "1"), (b"b", "2"), (b"c", "3")],
        "too_large": [(os.urandom(30_000), "big.bin")],
    }[problem]
    resp = _no_js_report(client, files)
    assert resp.status_code == 400
    assert 'id="files-error"' in resp.get_data(as_text=True)
    assert _attachments(small) == []
    assert not list((config.blob_dir / "attachments").glob("*"))


def test_the_quota_holds_without_javascript_too(config: Config) -> None:
    """The attack of the review: a 4 MiB no-JS file stored under a 1 MiB quota."""
    mib = 1024 * 1024
    small = create_app(replace(config, upload_quota_bytes=mib, max_request_bytes=8 * mib))
    client = small.test_client()
    assert _no_js_report(client, [(os.urandom(mib // 2), "fits.bin")]).status_code == 200
    resp = _no_js_report(client, [(os.urandom(4 * mib), "flood.bin")])
    assert resp.status_code == 400 and "no room" in resp.get_data(as_text=True)
    stored = _attachments(small)
    assert len(stored) == 1 and sum(a.size for a in stored) <= mib
    on_disk = sum(p.stat().st_size for p in (config.blob_dir / "attachments").glob("*"))
    assert on_disk == stored[0].size  # the refused file left nothing behind
    # Two files in one request share what is left of the quota.
    resp = _no_js_report(client, [(os.urandom(300_000), "a"), (os.urandom(300_000), "b")])
    assert resp.status_code == 400 and len(_attachments(small)) == 1


def test_no_file_chosen_is_not_an_error(app: Flask, client: FlaskClient) -> None:
    resp = _no_js_report(client, [(b"", "")])
    assert resp.status_code == 200 and _attachments(app) == []


# --- the upload API the browser uses -----------------------------------------------


def _api(
    client: FlaskClient, method: str, path: str, body: Any = None, raw: bytes | None = None
) -> Any:
    headers = {"X-CSRFToken": csrf_token(client)}
    if raw is not None:
        return client.open(
            path,
            method=method,
            data=raw,
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
    if method == "POST":
        return api_post(client, path, body or {})
    return client.open(
        path,
        method=method,
        data=json.dumps(body or {}),
        headers={**headers, "Content-Type": "application/json"},
    )


def _browser_file(data: bytes) -> tuple[bytes, dict[str, Any]]:
    out = io.BytesIO()
    writer = EncryptingWriter(out)
    writer.write(data)
    writer.finish()
    entry = {
        "name": "evidence.bin",
        "type": "application/octet-stream",
        "size": len(data),
        **writer.finish().entry(),
        "metadata_removed": False,
    }
    return out.getvalue(), entry


def _upload(client: FlaskClient, blob: bytes, part: int = 4096) -> str:
    resp = _api(client, "POST", "/api/uploads", {"size": len(blob), "part_size": part})
    assert resp.status_code == 201, resp.get_json()
    upload = resp.get_json()["upload"]
    for n in range(resp.get_json()["parts"]):
        r = _api(
            client, "PUT", f"/api/uploads/{upload}/parts/{n}", raw=blob[n * part : (n + 1) * part]
        )
        assert r.status_code == 200, r.get_json()
    return str(upload)


def test_parts_resume_refuse_disorder_and_accept_retries(app: Flask, client: FlaskClient) -> None:
    blob = os.urandom(10_000)
    start = _api(client, "POST", "/api/uploads", {"size": len(blob), "part_size": 4096})
    upload = start.get_json()["upload"]
    assert start.get_json()["parts"] == 3
    part = lambda n: blob[n * 4096 : (n + 1) * 4096]  # noqa: E731
    assert _api(client, "PUT", f"/api/uploads/{upload}/parts/1", raw=part(1)).status_code == 409
    r = _api(client, "PUT", f"/api/uploads/{upload}/parts/1", raw=part(1))
    assert r.get_json() == {"error": "part_order", "message": r.get_json()["message"], "next": 0}
    assert (
        _api(client, "PUT", f"/api/uploads/{upload}/parts/0", raw=part(0)[:100]).status_code == 400
    )
    assert (
        _api(client, "PUT", f"/api/uploads/{upload}/parts/0", raw=part(0)).get_json()["received"]
        == 1
    )
    assert (
        _api(client, "PUT", f"/api/uploads/{upload}/parts/0", raw=part(0)).get_json()["received"]
        == 1
    )
    assert _api(client, "GET", f"/api/uploads/{upload}").get_json()["received"] == 1
    for n in (1, 2):
        _api(client, "PUT", f"/api/uploads/{upload}/parts/{n}", raw=part(n))
    with app.app_context():
        assert services().uploads.blobs.read(attachment_blob(upload)) == blob


def test_a_dropped_connection_mid_part_loses_nothing(app: Flask, client: FlaskClient) -> None:
    blob = os.urandom(8192)
    upload = _api(client, "POST", "/api/uploads", {"size": 8192, "part_size": 4096}).get_json()[
        "upload"
    ]
    _api(client, "PUT", f"/api/uploads/{upload}/parts/0", raw=blob[:4096])
    # The body stops early although Content-Length promised a whole part.
    env = {
        "CONTENT_LENGTH": "4096",
        "CONTENT_TYPE": "application/octet-stream",
        "wsgi.input": io.BytesIO(blob[4096:6000]),
    }
    r = client.put(
        f"/api/uploads/{upload}/parts/1",
        environ_base=env,
        headers={"X-CSRFToken": csrf_token(client)},
    )
    assert r.status_code == 400 and r.get_json()["error"] == "incomplete"
    with app.app_context():
        assert services().uploads.blobs.read(attachment_blob(upload)) == blob[:4096]
    assert _api(client, "PUT", f"/api/uploads/{upload}/parts/1", raw=blob[4096:]).status_code == 200
    with app.app_context():
        assert services().uploads.blobs.read(attachment_blob(upload)) == blob


def test_a_part_racing_its_removal_leaves_no_file_behind(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Remove stops a part on its way and deletes the upload at once: the DELETE may
    land after the part's first check and before it opens the file. The part is
    refused, and no empty file is left that nothing would ever delete."""
    upload = _api(client, "POST", "/api/uploads", {"size": 4096, "part_size": 4096}).get_json()[
        "upload"
    ]
    with app.app_context(), services().db.reading() as s:
        owner = s.get(Attachment, upload).owner  # type: ignore[union-attr]
    uploads_class = type(app.extensions["portal"].uploads)
    room = uploads_class.room

    def removed_meanwhile(self: Any) -> int:
        self.cancel(upload, owner)
        return room(self)  # type: ignore[no-any-return]

    monkeypatch.setattr(uploads_class, "room", removed_meanwhile)
    r = _api(client, "PUT", f"/api/uploads/{upload}/parts/0", raw=os.urandom(4096))
    assert r.status_code == 404 and r.get_json()["error"] == "no_upload"
    with app.app_context():
        assert not services().uploads.blobs.path(attachment_blob(upload)).exists()


def test_an_upload_belongs_to_its_session(app: Flask, client: FlaskClient) -> None:
    upload = _api(client, "POST", "/api/uploads", {"size": 100, "part_size": 4096}).get_json()[
        "upload"
    ]
    other = app.test_client()
    assert _api(other, "PUT", f"/api/uploads/{upload}/parts/0", raw=b"x" * 100).status_code == 404
    assert _api(other, "GET", f"/api/uploads/{upload}").status_code == 404
    assert _api(other, "DELETE", f"/api/uploads/{upload}").status_code == 404


def test_asking_after_an_upload_of_an_ended_session_starts_no_session(
    app: Flask, client: FlaskClient
) -> None:
    """The page asks where to resume after a part failed. If the session ended
    meanwhile, the question must not start one: the renewal that follows would
    say the session is not new, and the page would go on naming the ended
    session's uploads (refused, "add it again") instead of sending them again."""
    upload = _api(client, "POST", "/api/uploads", {"size": 100, "part_size": 4096}).get_json()[
        "upload"
    ]
    client.delete_cookie("portal_session")  # ended, as after hours without a request
    assert client.get(f"/api/uploads/{upload}").status_code == 404
    assert client.get_cookie("portal_session") is None
    assert client.get("/api/form-token").get_json()["new_session"] is True


def _report_with_a_file(client: FlaskClient, org: Organization, data: bytes) -> tuple[str, bytes]:
    """A browser report naming one uploaded file, stored; the upload's id and ciphertext."""
    blob, entry = _browser_file(data)
    upload = _upload(client, blob)
    entry["upload"] = upload
    _, body = browser_style_request(org, "report with a file", attachments=[entry])
    body["attachments"] = [upload]
    r = _api(client, "POST", "/api/reports", body)
    assert r.status_code == 201, r.get_json()
    return upload, blob


def test_a_report_with_a_file_sent_again_after_a_lost_answer_is_told_it_arrived(
    app: Flask, client: FlaskClient, org: Organization
) -> None:
    """The report and its file were stored, and the answer was lost: the same
    sealed report sent again names a file its case already holds. It is told
    the case is there (not "add the file again", which would make a second
    report), and the file stays with the one case."""
    blob, entry = _browser_file(b"a photo of the checkpoint" * 100)
    upload = _upload(client, blob)
    entry["upload"] = upload
    _, body = browser_style_request(org, "report with a file", attachments=[entry])
    body["attachments"] = [upload]
    assert _api(client, "POST", "/api/reports", body).status_code == 201
    again = _api(client, "POST", "/api/reports", body)
    assert again.status_code == 200 and again.get_json()["stored_before"] is True
    with app.app_context(), services().db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Mailbox)) == 1
        assert s.scalar(select(func.count()).select_from(Attachment)) == 1


def test_a_renewal_tells_a_page_its_uploads_are_not_the_sessions_without_naming_them(
    app: Flask, client: FlaskClient
) -> None:
    """The page's session ended and another tab of the browser opened a page,
    starting a session before the page renewed its token: to the renewal that
    session is not new. Given the mark the page's uploads were started under, the
    renewal says the session's uploads are other ones; asked without it, it says
    nothing of them (whoever holds the device learns no upload happened)."""

    def renewal(mark: str | None) -> dict[str, object]:
        headers = {"X-Uploads-Mark": mark} if mark else {}
        return dict(client.get("/api/form-token", headers=headers).get_json())

    started = _api(client, "POST", "/api/uploads", {"size": 100, "part_size": 4096}).get_json()
    mine = started["uploader"]
    assert renewal(mine)["other_uploads"] is False  # the same session
    assert renewal(None)["other_uploads"] is False
    assert renewal("0" * 24)["other_uploads"] is True  # a guess is told only "not yours"
    assert "uploader" not in renewal(None)
    client.delete_cookie("portal_session")  # ended
    client.get("/report")  # the other tab
    assert renewal(mine) == {**renewal(mine), "new_session": False, "other_uploads": True}
    again = _api(client, "POST", "/api/uploads", {"size": 100, "part_size": 4096}).get_json()
    assert again["uploader"] != mine
    assert renewal(again["uploader"])["other_uploads"] is False
    assert renewal(mine)["other_uploads"] is True
    # The mark names the uploads without handing the page what owns them.
    with client.session_transaction() as kept:
        assert kept["uploader"] not in (mine, again["uploader"])


def test_an_upload_a_report_claimed_cannot_be_deleted_by_its_page(
    app: Flask, client: FlaskClient, org: Organization
) -> None:
    """Once a report has claimed a file it is the report's: the page's delete (a
    Remove pressed late) finds nothing and the file stays. That a claim cannot
    land between the delete's check and the delete is by construction (one
    statement, Uploads.cancel); no test races the two."""
    upload, blob = _report_with_a_file(client, org, _evidence(20_000, b"MARKER-claimed"))
    r = _api(client, "DELETE", f"/api/uploads/{upload}", None)
    assert r.status_code == 404 and r.get_json()["error"] == "no_upload"
    with app.app_context():
        with services().db.reading() as s:
            row = s.get(Attachment, upload)
            assert row is not None and row.mailbox_id is not None
        assert services().uploads.blobs.read(attachment_blob(upload)) == blob


def test_a_browser_report_with_files_reaches_the_desk(
    app: Flask, client: FlaskClient, org: Organization, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    data = _evidence(50_000, b"MARKER-api-file")
    _report_with_a_file(client, org, data)
    store = DeskStore(tmp_path / "desk")
    to_desk(app, store, desk_keys, tmp_path)
    shown = cases.show_case(store, desk_keys, cases.list_cases(store)[0].case)
    assert [f["state"] for f in shown.items[0].files] == ["verified"]
    f = desk_files.files_of(shown.items[0].content, shown.case)[0]
    assert b"".join(desk_files.plaintext(store, f)) == data


def test_a_reports_files_are_hashed_before_its_write_waits_for_its_turn(
    app: Flask, client: FlaskClient, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hashing a large file takes seconds; inside the shared write (group commit)
    it would hold every other request's write for as long."""
    from portal.common import db as database
    from portal.server.uploads import Uploads

    hashed_inside: list[bool] = []
    real = Uploads._finished_sha256

    def watched(self: Uploads, upload_id: str, size: int) -> str:
        hashed_inside.append(bool(getattr(database._IN_BATCH, "on", False)))
        return real(self, upload_id, size)

    monkeypatch.setattr(Uploads, "_finished_sha256", watched)
    _, blob = _report_with_a_file(client, org, _evidence(50_000, b"MARKER-hashed-first"))
    assert hashed_inside == [False]
    [stored] = _attachments(app)
    assert stored.sha256 == hashlib.sha256(blob).hexdigest() and stored.owner is None


def test_a_report_naming_one_upload_twice_stores_nothing(
    app: Flask, client: FlaskClient, org: Organization
) -> None:
    blob, entry = _browser_file(_evidence(20_000, b"MARKER-twice"))
    upload = _upload(client, blob)
    entry["upload"] = upload
    _, body = browser_style_request(org, "report", attachments=[entry])
    body["attachments"] = [upload, upload]
    r = _api(client, "POST", "/api/reports", body)
    assert r.status_code == 404 and r.get_json()["error"] == "no_upload"
    assert [a.mailbox_id for a in _attachments(app)] == [None]


def test_a_report_naming_an_unfinished_upload_stores_nothing(
    app: Flask, client: FlaskClient, org: Organization
) -> None:
    upload = _api(client, "POST", "/api/uploads", {"size": 9000, "part_size": 4096}).get_json()[
        "upload"
    ]
    _api(client, "PUT", f"/api/uploads/{upload}/parts/0", raw=os.urandom(4096))
    _, body = browser_style_request(org, "report")
    body["attachments"] = [upload]
    r = _api(client, "POST", "/api/reports", body)
    assert r.status_code == 400 and r.get_json()["error"] == "unfinished"
    assert [a.mailbox_id for a in _attachments(app)] == [None]
    with app.app_context(), services().db.reading() as s:
        from portal.server.models import Mailbox

        assert list(s.scalars(select(Mailbox))) == []
    # Nothing already sent is lost: the upload can still be finished and used.
    assert (
        _api(client, "PUT", f"/api/uploads/{upload}/parts/1", raw=os.urandom(4096)).status_code
        == 200
    )


def test_limits_and_quota_are_clear(app: Flask, config: Config) -> None:
    small = create_app(
        replace(config, max_files=1, max_file_bytes=10_000, upload_quota_bytes=15_000)
    )
    c = small.test_client()
    assert _api(c, "POST", "/api/uploads", {"size": 20_000, "part_size": 4096}).status_code == 413
    assert _api(c, "POST", "/api/uploads", {"size": 0, "part_size": 4096}).status_code == 400
    _upload(c, os.urandom(9_000))  # 9,000 bytes really held
    r = _api(c, "POST", "/api/uploads", {"size": 9_000, "part_size": 4096})
    assert r.status_code == 413 and r.get_json()["error"] == "too_many"
    other = small.test_client()
    r = _api(other, "POST", "/api/uploads", {"size": 9_000, "part_size": 4096})
    assert r.status_code == 507 and r.get_json()["error"] == "full"


def test_an_upload_whose_page_is_gone_stops_counting_once_it_stalls(config: Config) -> None:
    """A reporter reloads mid-upload (or the phone discards the tab): the page that
    was sending is gone, and its unfinished upload still counts against the
    session's limits. Chosen again, the same file is refused while the old upload
    may still be moving; once it has not moved for STALLED_SECONDS, the session's
    next upload drops it, file and all. A finished upload, waiting for Send in
    another tab, is never dropped."""
    app = create_app(replace(config, max_file_bytes=10_000, max_report_bytes=12_000))
    c = app.test_client()
    start = {"size": 9_000, "part_size": 4096}
    first = _api(c, "POST", "/api/uploads", start).get_json()["upload"]
    assert _api(c, "PUT", f"/api/uploads/{first}/parts/0", raw=os.urandom(4096)).status_code == 200
    r = _api(c, "POST", "/api/uploads", start)  # the page reloaded: the same file again
    assert r.status_code == 413 and r.get_json()["error"] == "too_large"
    with app.app_context():
        blob = services().uploads.blobs.path(attachment_blob(first))
    old = time.time() - STALLED_SECONDS - 5
    os.utime(blob, (old, old))
    r = _api(c, "POST", "/api/uploads", start)
    assert r.status_code == 201, r.get_json()
    assert not blob.exists()
    with app.app_context(), services().db.reading() as s:
        assert s.get(Attachment, first) is None
    # A finished upload is another page's, waiting to be named: kept, however old.
    second = r.get_json()["upload"]
    for n, size in enumerate((4096, 4096, 808)):
        _api(c, "PUT", f"/api/uploads/{second}/parts/{n}", raw=os.urandom(size))
    with app.app_context():
        done = services().uploads.blobs.path(attachment_blob(second))
    os.utime(done, (old, old))
    assert _api(c, "POST", "/api/uploads", {"size": 1_000, "part_size": 4096}).status_code == 201
    assert done.exists()


def test_announced_sizes_take_no_room(app: Flask, config: Config) -> None:
    """The attack of the second review: reserve the whole quota in sizes announced
    from many sessions, send nothing, and every reporter's upload got "full"."""
    small = create_app(replace(config, max_file_bytes=10_000, upload_quota_bytes=30_000))
    for _ in range(10):
        squatter = small.test_client()
        r = _api(squatter, "POST", "/api/uploads", {"size": 9_999, "part_size": 4096})
        assert r.status_code == 201
    reporter = small.test_client()
    _upload(reporter, os.urandom(9_000))  # a real upload still fits
    resp = _no_js_report(reporter, [(os.urandom(9_000), "also.bin")])
    assert resp.status_code == 200  # and so does one without JavaScript
    # Bytes that really arrive count: two uploads that each fit when announced
    # cannot both be sent; the second is refused part by part.
    blob = os.urandom(9_999)
    starts = []
    for _ in range(2):
        flood = small.test_client()
        made = _api(flood, "POST", "/api/uploads", {"size": len(blob), "part_size": 4096})
        assert made.status_code == 201
        starts.append((flood, made.get_json()))
    statuses = [
        _api(
            flood,
            "PUT",
            f"/api/uploads/{made['upload']}/parts/{n}",
            raw=blob[n * 4096 : (n + 1) * 4096],
        ).status_code
        for flood, made in starts
        for n in range(made["parts"])
    ]
    assert statuses[:3] == [200, 200, 200] and 507 in statuses[3:]


def test_unfinished_uploads_expire(app: Flask, client: FlaskClient) -> None:
    import datetime as dt

    upload = _api(client, "POST", "/api/uploads", {"size": 100, "part_size": 4096}).get_json()[
        "upload"
    ]
    with app.app_context():
        uploads = services().uploads
        assert uploads.expire(1) == 0
        uploads.today = lambda: dt.date.today() + dt.timedelta(days=3)  # type: ignore[method-assign]
        assert uploads.expire(1) == 1
        assert not uploads.blobs.path(attachment_blob(upload)).exists()


def test_the_desk_serves_verified_files_and_refuses_damaged_ones(
    app: Flask, client: FlaskClient, desk_keys: DeskKeys, tmp_path: Path, desk_home: Path
) -> None:
    from portal.desk.web import create_desk_app
    from tests.harness.web import CSRF

    photo = b"\xff\xd8" + os.urandom(3000)
    assert _no_js_report(client, [(photo, "photo.jpg")]).status_code == 200
    home = fresh_desk_copy(desk_home, tmp_path / "desk")
    store = DeskStore(home)
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    desk = create_desk_app(home, token="t", idle_seconds=600)
    c = desk.test_client()
    c.get("/?token=t")
    token = CSRF.search(c.get("/").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    c.post("/unlock", data={"csrf_token": token, "passphrase": PASSPHRASE})
    page = c.get(f"/cases/{case}").get_data(as_text=True)
    assert hashlib.sha256(photo).hexdigest() in page and "verified" in page
    upload = desk_files.files_of(cases.show_case(store, desk_keys, case).items[0].content, case)[0]
    resp = c.get(f"/cases/{case}/files/{upload.upload}")
    assert resp.status_code == 200 and resp.data == photo
    assert resp.headers["X-SHA256"] == hashlib.sha256(photo).hexdigest()
    assert resp.headers["Content-Disposition"].startswith("attachment")
    assert resp.mimetype == "application/octet-stream"  # never rendered by the browser
    # Not a picture Pillow can read (random bytes after a JPEG marker): no view is made.
    assert c.get(f"/cases/{case}/files/{upload.upload}/view").status_code == 422
    path = store.blobs.path(str(desk_files.locate(store, upload)))
    path.write_bytes(path.read_bytes()[:-3])
    resp = c.get(f"/cases/{case}/files/{upload.upload}")
    assert resp.status_code == 409 and photo not in resp.data


def test_purge_expires_abandoned_uploads(
    app: Flask,
    client: FlaskClient,
    config: Config,
    desk_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _api(client, "POST", "/api/uploads", {"size": 100, "part_size": 4096})
    monkeypatch.setenv("PORTAL_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("PORTAL_DATABASE_URL", config.database_url)
    monkeypatch.setenv("PORTAL_KEYS", str(desk_home / "organization.json"))
    monkeypatch.setenv("PORTAL_UPLOAD_EXPIRY_DAYS", "1")
    out = CliRunner().invoke(main, ["purge"])
    assert out.exit_code == 0 and "0 abandoned upload(s)" in out.output
