"""The reporter's case loop without JavaScript, and the outbox that feeds it."""

from __future__ import annotations

import io
import re
import tarfile
import threading
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from nacl.signing import SigningKey
from sqlalchemy import select

from portal.desk import cases, replies
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskStore
from portal.protocol import codes
from portal.protocol.bundles import BundleError, Manifest, open_bundle, write_bundle
from portal.server.config import Config
from portal.server.models import Envelope, Mailbox, Reply
from portal.server.web.services import services
from tests.harness.loop import (
    confirm,
    confirm_page,
    desk_outbox,
    new_code_and_rotation,
    open_case,
    submit_report,
    to_desk,
    to_portal,
)
from tests.harness.web import CSRF, csrf_token, files_containing

CSRF_VALUE = re.compile(CSRF.pattern.replace('([^"]+)', '[^"]+'))


@pytest.fixture
def store(tmp_path: Path) -> DeskStore:
    return DeskStore(tmp_path / "desk")


def _reply_loop(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    keys: DeskKeys,
    tmp: Path,
    text: str,
    reply_text: str,
) -> str:
    code = submit_report(client, text)
    to_desk(app, store, keys, tmp)
    (case_id,) = [c.case for c in cases.list_cases(store)]
    replies.reply(store, keys, case_id, "in_review", reply_text)
    to_portal(app, desk_outbox(store, keys, tmp / "outbox.tar"))
    return code


def test_full_loop_reply_rotation_and_follow_up(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    desk_keys: DeskKeys,
    tmp_path: Path,
    config: Config,
) -> None:
    code = _reply_loop(
        app,
        client,
        store,
        desk_keys,
        tmp_path,
        "MARKER-loop report",
        "MARKER-reply We have read your report <b>carefully</b>.",
    )
    status, page = open_case(client, code)
    assert status == 200
    assert "MARKER-reply We have read your report &lt;b&gt;carefully&lt;/b&gt;." in page
    assert "In review" in page and "Received" in page
    new_code, rotation = new_code_and_rotation(page)
    assert new_code != code

    # A wrong group is refused and the code shown again; nothing changes.
    wrong = "0000" if new_code[-4:] != "0000" else "1111"
    assert confirm(client, new_code, rotation, wrong) == 400
    refused = confirm_page(client, rotation, wrong)[1]  # the case again, saying which group
    assert 'id="confirm-error">These digits do not match the underlined group' in refused
    assert confirm(client, new_code, rotation, "٠١٢٣") == 400  # Arabic-Indic digits, wrong ones
    arabic_group = "".join(chr(0x660 + int(d)) for d in new_code[-4:])
    assert confirm(client, new_code, rotation, arabic_group) == 200
    assert confirm(client, new_code, rotation, new_code[-4:]) == 200  # double submit is harmless

    assert open_case(client, code)[0] == 404  # rotated away: dead
    underlined = re.search(r'data-new-code>.*?class="code-last">([0-9]{4})<', page, re.S)
    assert underlined and underlined.group(1) == new_code[-4:]
    assert "underlined above" in page  # the label says which group to type
    status, page = open_case(client, new_code)
    assert status == 200

    resp = client.post(
        "/case/message",
        data={"csrf_token": csrf_token(client, "/case"), "message": "MARKER-followup more details"},
        follow_redirects=True,
    )
    assert resp.status_code == 200
    to_desk(app, store, desk_keys, tmp_path)
    shown = cases.show_case(store, desk_keys, cases.list_cases(store)[0].case)
    kinds = [i.kind for i in shown.items]
    assert kinds == ["report", "message"]
    assert shown.items[1].content["fields"]["message"] == "MARKER-followup more details"
    assert shown.status == "in_review"
    for marker in (b"MARKER-loop", b"MARKER-reply", b"MARKER-followup"):
        assert files_containing(config.data_dir, marker) == []


def test_a_replayed_or_renumbered_desk_item_is_not_believed(
    app: Flask, client: FlaskClient, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    """The attack: the server serves an old, genuinely signed status again as a newer
    item (or under another number); the reader must not take it as the latest word."""
    code = _reply_loop(app, client, store, desk_keys, tmp_path, "report", "first reply")
    (case_id,) = [c.case for c in cases.list_cases(store)]
    replies.reply(store, desk_keys, case_id, "closed", "MARKER-closing")
    to_portal(app, desk_outbox(store, desk_keys, tmp_path / "o2.tar"))
    with app.app_context(), services().db.transaction() as s:
        rows = {r.seq: r for r in s.scalars(select(Reply).where(Reply.mailbox_id == case_id))}
        # The first item (status "in review") replayed after the closing one.
        s.add(
            Reply(
                id="ab" * 16,
                mailbox_id=case_id,
                seq=3,
                sealed=rows[1].sealed,
                received_on=rows[1].received_on,
            )
        )
    status, page = open_case(client, code)
    assert status == 200
    history = re.findall(r'class="status-label" data-field="status">([^<]+)<', page)
    assert history == ["Received", "In review", "Closed"]  # the replay adds no "In review"
    assert page.count("reply-invalid") >= 1 and "MARKER-closing" in page


def test_leaving_without_confirming_keeps_the_old_code(
    app: Flask, client: FlaskClient, config: Config
) -> None:
    code = submit_report(client, "report")
    assert open_case(client, code)[0] == 200
    _, page = open_case(client, code)
    pending, _ = new_code_and_rotation(page)
    client.post("/case/leave", data={"csrf_token": csrf_token(client, "/case")})
    assert open_case(client, pending)[0] == 404  # a pending code never opens a case
    assert open_case(client, code)[0] == 200  # the old code still works


def test_a_superseded_rotation_is_refused_and_nothing_is_lost(
    app: Flask, client: FlaskClient
) -> None:
    code = submit_report(client, "report")
    other = app.test_client()
    first_new, first_rot = new_code_and_rotation(open_case(client, code)[1])
    second_new, second_rot = new_code_and_rotation(open_case(other, code)[1])
    assert confirm(client, first_new, first_rot, first_new[-4:]) == 409
    assert open_case(client, first_new)[0] == 404  # never became current
    assert confirm(other, second_new, second_rot, second_new[-4:]) == 200
    assert open_case(client, code)[0] == 404
    assert open_case(client, second_new)[0] == 200


def test_two_tabs_rotating_at_once_leave_exactly_one_working_code(app: Flask) -> None:
    code = submit_report(app.test_client(), "report")
    outcomes: dict[int, tuple[str | None, int]] = {}

    def tab(i: int) -> None:
        c = app.test_client()
        status, page = open_case(c, code)
        if status != 200:
            outcomes[i] = (None, status)
            return
        new, rot = new_code_and_rotation(page)
        outcomes[i] = (new, confirm(c, new, rot, new[-4:]))

    threads = [threading.Thread(target=tab, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [new for new, status in outcomes.values() if status == 200]
    assert len(winners) == 1, outcomes
    checker = app.test_client()
    assert open_case(checker, winners[0])[0] == 200
    assert open_case(checker, code)[0] == 404
    for new, status in outcomes.values():
        if new is not None and status != 200:
            assert status == 409 and open_case(checker, new)[0] == 404


def test_every_failing_code_gets_the_same_answer(app: Flask, client: FlaskClient) -> None:
    code = submit_report(client, "report")
    _, page = open_case(client, code)
    pending, _ = new_code_and_rotation(page)
    typo = code[:5] + str((int(code[5]) + 1) % 10) + code[6:]
    unknown = codes.generate()
    answers = {
        (status, CSRF_VALUE.sub("", page))
        for status, page in (open_case(client, c) for c in (unknown, pending))
    }
    assert len(answers) == 1  # the same status and the same page, token aside
    assert next(iter(answers))[0] == 404
    # A code that cannot be any code (a typo, stray letters) gets the check-digit
    # hint the browser gives: it says nothing about any case.
    for wrong in (typo, "hello"):
        status, page = open_case(client, wrong)
        assert status == 404 and 'id="typo-hint"' in page


def test_follow_up_after_expiry_is_refused_and_echoed_back(app: Flask, client: FlaskClient) -> None:
    code = submit_report(client, "report")
    open_case(client, code)
    with client.session_transaction() as sess:
        sess["case"] = {**sess["case"], "seen": sess["case"]["seen"] - 3600}
    resp = client.post(
        "/case/message",
        data={"csrf_token": csrf_token(client, "/case"), "message": "my unsent words"},
        follow_redirects=True,
    )
    assert resp.status_code == 403
    assert "my unsent words" in resp.get_data(as_text=True)
    with app.app_context(), services().db.reading() as s:
        assert [e.kind for e in s.scalars(select(Envelope))] == ["report"]


@pytest.mark.parametrize("site", ["same-origin", "cross-site", None])
def test_a_message_written_while_the_session_ended_comes_back_only_to_its_own_page(
    app: Flask, client: FlaskClient, site: str | None
) -> None:
    """Without JavaScript, the session ends while the reporter writes (hours, or Leave
    in another tab): the form's token no longer holds. From the portal's own page
    the words come back with the form that opens the case again; a post another
    site made, or one whose browser does not say, echoes nothing."""
    code = submit_report(client, "report")
    open_case(client, code)
    token = csrf_token(client, "/case")
    client.delete_cookie("portal_session")  # ended
    headers = {"Sec-Fetch-Site": site} if site else {}
    resp = client.post(
        "/case/message", data={"csrf_token": token, "message": "MARKER words"}, headers=headers
    )
    page = resp.get_data(as_text=True)
    if site == "same-origin":
        assert resp.status_code == 403
        assert 'id="unsent"' in page and "MARKER words" in page
        assert 'action="/case"' in page  # opens the case again, right there
    else:
        assert resp.status_code == 400 and "MARKER" not in page
    with app.app_context(), services().db.reading() as s:
        assert [e.kind for e in s.scalars(select(Envelope))] == ["report"]


def test_a_refused_form_in_an_open_case_is_no_activity_and_only_a_message_comes_back(
    client: FlaskClient,
) -> None:
    """Posts whose token does not hold while a case is open (a tab older than the
    session, say): a message from the portal's own page comes back in the open
    case's box, saying the page was out of date; anything else gets the plain
    answer, echoed nowhere. None of it is activity: the case closes when it would
    have."""
    code = submit_report(client, "report")
    open_case(client, code)
    with client.session_transaction() as sess:
        sess["case"] = {**sess["case"], "seen": sess["case"]["seen"] - 60}
        seen = sess["case"]["seen"]
    for path, site in (
        ("/case/message", "same-origin"),
        ("/case/message", "cross-site"),
        ("/case/leave", "same-origin"),
        ("/case/confirm", "same-origin"),
    ):
        resp = client.post(
            path,
            data={"csrf_token": "forged", "message": "MARKER words"},
            headers={"Sec-Fetch-Site": site},
        )
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400
        if path == "/case/message" and site == "same-origin":
            assert re.search(r'<textarea id="message"[^>]*>MARKER words</textarea>', page)
            assert "This page was out of date" in page
        else:
            assert "MARKER" not in page
    with client.session_transaction() as sess:
        assert sess["case"]["seen"] == seen


def test_the_file_hint_names_what_the_files_go_with(client: FlaskClient) -> None:
    """Without JavaScript, files go out with the form's own button: on the case page
    that sends a message, not a report."""
    report_page = client.get("/report").get_data(as_text=True)
    assert "together with your report" in report_page
    _, page = open_case(client, submit_report(client, "report"))
    assert "together with your message" in page and "together with your report" not in page


def test_witness_invitation_answers(
    app: Flask, client: FlaskClient, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    invitation = replies.invite(store, desk_keys, "MARKER-q What did you see on 3 May?")
    result = to_portal(app, desk_outbox(store, desk_keys, tmp_path / "outbox.tar"))
    assert (result.invitations, result.replies) == (1, 1)
    status, page = open_case(client, invitation.code)
    assert status == 200
    assert "MARKER-q What did you see on 3 May?" in page
    # A witness sees the questions first, then where to answer, then the new code.
    assert page.index("MARKER-q") < page.index('id="message-form"') < page.index("data-new-code")
    resp = client.post(
        "/case/message",
        data={"csrf_token": csrf_token(client, "/case"), "message": "MARKER-a I saw trucks."},
        follow_redirects=True,
    )
    assert resp.status_code == 200
    to_desk(app, store, desk_keys, tmp_path)
    listed = cases.list_cases(store)
    assert [(c.case, c.witness, c.kinds) for c in listed] == [
        (invitation.mailbox_id, True, ("answer",))
    ]
    shown = cases.show_case(store, desk_keys, invitation.mailbox_id)
    assert shown.witness is True
    assert shown.items[0].kind == "answer"
    assert shown.items[0].content["fields"]["answer"] == "MARKER-a I saw trucks."


def test_acked_ciphertext_is_deleted_only_after_the_grace_period(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    desk_keys: DeskKeys,
    tmp_path: Path,
    config: Config,
) -> None:
    import datetime as dt

    submit_report(client, "report")
    to_desk(app, store, desk_keys, tmp_path)
    result = to_portal(app, desk_outbox(store, desk_keys, tmp_path / "outbox.tar"))
    assert result.acked == 1
    with app.app_context():
        mailboxes = services().mailboxes
        with mailboxes.db.reading() as s:
            (envelope_id,) = s.scalars(select(Envelope.id))
        assert mailboxes.purge_acknowledged(7) == 0
        assert mailboxes.document(envelope_id)
        mailboxes.today = lambda: dt.date.today() + dt.timedelta(days=8)  # type: ignore[method-assign]
        assert mailboxes.purge_acknowledged(7) == 1
        with pytest.raises(FileNotFoundError):
            mailboxes.document(envelope_id)
        with mailboxes.db.reading() as s:  # gone from the row, not only hidden
            assert list(s.scalars(select(Envelope.document))) == [None]
    # The next inbox tells the desk its outbox landed: the ack is not sent again.
    to_desk(app, store, desk_keys, tmp_path)
    manifest = desk_outbox(store, desk_keys, tmp_path / "outbox2.tar")
    with open_bundle(manifest, "outbox") as bundle:
        assert [i.kind for i in bundle.manifest.items] == []


# --- outbox bundles that must be refused whole ---------------------------------


def _state(app: Flask) -> tuple[int, int]:
    with app.app_context(), services().db.reading() as s:
        from portal.server.models import OutboxImport, Reply

        return (len(list(s.scalars(select(Reply)))), len(list(s.scalars(select(OutboxImport)))))


@pytest.fixture
def good_outbox(
    app: Flask, client: FlaskClient, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> Path:
    submit_report(client, "report one")
    submit_report(client, "report two")
    to_desk(app, store, desk_keys, tmp_path)
    for case in cases.list_cases(store):
        replies.reply(store, desk_keys, case.case, "in_review", "thank you")
    return desk_outbox(store, desk_keys, tmp_path / "outbox.tar")


def _members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]


def _write(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for m, data in members:
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    "damage", ["flip-item", "flip-manifest", "drop-sig", "reorder", "truncate", "drop-item"]
)
def test_damaged_outbox_is_refused_and_changes_nothing(
    app: Flask, good_outbox: Path, tmp_path: Path, damage: str
) -> None:
    members = _members(good_outbox)
    bad = tmp_path / "bad.tar"
    if damage == "flip-item":
        m, data = members[-1]
        members[-1] = (m, data[:-1] + bytes([data[-1] ^ 1]))
        _write(bad, members)
    elif damage == "flip-manifest":
        m, data = members[0]
        members[0] = (m, data.replace(b'"in_review"', b'"closed"').replace(b'"seq":1', b'"seq":2'))
        _write(bad, members)
    elif damage == "drop-sig":
        _write(bad, [members[0], *members[2:]])
    elif damage == "reorder":
        _write(bad, [members[0], members[1], *reversed(members[2:])])
    elif damage == "drop-item":
        _write(bad, members[:-1])
    else:
        bad.write_bytes(good_outbox.read_bytes()[: good_outbox.stat().st_size // 2])
    with pytest.raises(BundleError):
        to_portal(app, bad)
    assert _state(app) == (0, 0)
    assert to_portal(app, good_outbox).replies == 2  # the good one still applies


def test_outbox_signed_by_another_key_is_refused(
    app: Flask, good_outbox: Path, tmp_path: Path
) -> None:
    with open_bundle(good_outbox, "outbox") as bundle:
        manifest: Manifest = bundle.manifest
        contents = {i.name: bundle.read(i) for i in manifest.items}
    forged = tmp_path / "forged.tar"
    signature = SigningKey.generate().sign(manifest.to_bytes()).signature
    write_bundle(forged, manifest, lambda i: io.BytesIO(contents[i.name]), signature=signature)
    with pytest.raises(BundleError, match="signature"):
        to_portal(app, forged)
    assert _state(app) == (0, 0)


def test_replayed_and_older_outboxes_are_refused(
    app: Flask, good_outbox: Path, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    assert to_portal(app, good_outbox).replies == 2
    with pytest.raises(BundleError, match="already imported"):
        to_portal(app, good_outbox)
    newer = desk_outbox(store, desk_keys, tmp_path / "newer.tar")
    newest = desk_outbox(store, desk_keys, tmp_path / "newest.tar")
    to_portal(app, newest)
    with pytest.raises(BundleError, match="replay or out of order"):
        to_portal(app, newer)
    assert _state(app) == (2, 2)


def test_reply_for_an_unknown_mailbox_is_reported_not_applied(
    app: Flask, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    invitation = replies.invite(store, desk_keys, "questions")
    replies.reply(store, desk_keys, invitation.mailbox_id, None, "follow-up")
    path = desk_outbox(store, desk_keys, tmp_path / "o.tar")
    # Drop the invitation item but keep a valid signature: re-sign with the desk's key.
    with open_bundle(path, "outbox") as bundle:
        items = tuple(i for i in bundle.manifest.items if i.kind != "invitation")
        contents = {i.name: bundle.read(i) for i in items}
        manifest = Manifest(
            type="outbox",
            org=bundle.manifest.org,
            created="2026-01-01",
            items=items,
            extra={"seq": 9, "base": 0},
        )
    write_bundle(
        path,
        manifest,
        lambda i: io.BytesIO(contents[i.name]),
        signature=desk_keys.signing.sign(manifest.to_bytes()).signature,
    )
    result = to_portal(app, path)
    assert result.replies == 0 and len(result.refused) == 2
    assert "not on this portal" in result.refused[0]
    with app.app_context(), services().db.reading() as s:
        assert list(s.scalars(select(Mailbox))) == []


def test_a_desk_restored_from_backup_catches_up_its_outbox_number(
    app: Flask, client: FlaskClient, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    first = DeskStore(tmp_path / "first")
    submit_report(client, "report")
    to_desk(app, first, desk_keys, tmp_path)
    to_portal(app, desk_outbox(first, desk_keys, tmp_path / "o1.tar"))
    restored = DeskStore(tmp_path / "restored")  # its counter starts again at 0
    to_desk(app, restored, desk_keys, tmp_path)
    assert cases.list_cases(restored) == []  # acked by the first desk: not resent
    replies.invite(restored, desk_keys, "questions for a witness")
    assert to_portal(app, desk_outbox(restored, desk_keys, tmp_path / "o2.tar")).seq == 2


# --- Whatever the reporter does, in whatever order, one code works and the page names it.


def _send(client: FlaskClient, text: str) -> tuple[int, str]:
    resp = client.post(
        "/case/message",
        data={"csrf_token": csrf_token(client, "/case"), "message": text},
        follow_redirects=True,
    )
    return resp.status_code, resp.get_data(as_text=True)


def _names(page: str, code: str) -> bool:
    """The page says which code works: the one ending in these four digits."""
    return f'<span dir="ltr" class="code-digits">{code[-4:]}</span>' in page


def _idle(client: FlaskClient) -> None:
    with client.session_transaction() as sess:
        sess["case"] = {**sess["case"], "seen": sess["case"]["seen"] - 3600}


def _opens(app: Flask, code: str) -> bool:
    return open_case(app.test_client(), code)[0] == 200


def test_a_message_before_confirming_keeps_the_new_code_and_both_stay_open(
    app: Flask, client: FlaskClient
) -> None:
    """The lockout of the review: a follow-up sent before confirming ended on a page
    that named a code that did not work, and confirming closed the case."""
    code = submit_report(client, "report")
    _, page = open_case(client, code)
    new, rotation = new_code_and_rotation(page)
    assert _names(page, code)  # "until you confirm, the code ending in … keeps working"
    status, page = _send(client, "first words")
    assert status == 200 and 'id="message-done-nojs"' in page
    assert new_code_and_rotation(page) == (new, rotation)  # the same new code, still shown
    assert _names(page, code)
    status, page = confirm_page(client, rotation, new[-4:])
    assert status == 200 and 'id="confirmed-notice"' in page
    assert 'id="case-heading"' in page and _names(page, new)  # still open, names the new one
    assert client.get("/case").get_data(as_text=True).count('id="case-heading"') == 1  # reload
    status, page = _send(client, "second words")
    assert status == 200 and 'id="message-done-nojs"' in page and _names(page, new)
    resp = client.post(
        "/case/leave", data={"csrf_token": csrf_token(client, "/case")}, follow_redirects=True
    )
    assert _names(resp.get_data(as_text=True), new)  # "your code ending in … still opens it"
    assert not _opens(app, code) and _opens(app, new)


@pytest.mark.parametrize("confirmed", [False, True])
def test_a_case_that_idled_out_names_the_code_that_still_opens_it(
    app: Flask, client: FlaskClient, confirmed: bool
) -> None:
    code = submit_report(client, "report")
    new, rotation = new_code_and_rotation(open_case(client, code)[1])
    if confirmed:
        assert confirm_page(client, rotation, new[-4:])[0] == 200
    working = new if confirmed else code
    _idle(client)
    status, page = _send(client, "typed while away")
    assert status == 403
    assert "Your message was not sent" in page and "Nothing was lost" not in page
    assert "typed while away" in page and _names(page, working)
    assert _names(client.get("/case").get_data(as_text=True), working)
    assert _opens(app, working) and not _opens(app, new if not confirmed else code)


def _opened_twice(
    app: Flask, client: FlaskClient
) -> tuple[str, tuple[str, str], FlaskClient, tuple[str, str]]:
    """One case opened here and in another browser: each holds its own new code."""
    code = submit_report(client, "report")
    here = new_code_and_rotation(open_case(client, code)[1])
    elsewhere = app.test_client()
    return code, here, elsewhere, new_code_and_rotation(open_case(elsewhere, code)[1])


def test_a_newer_code_made_in_another_browser_is_said_and_the_old_one_works(
    app: Flask, client: FlaskClient
) -> None:
    code, (mine, my_rotation), elsewhere, (theirs, their_rotation) = _opened_twice(app, client)
    status, page = confirm_page(client, my_rotation, mine[-4:])
    assert status == 200 and 'id="superseded"' in page
    assert 'id="new-code-section" hidden' in page  # the dead code is no longer shown
    assert _names(page, code)  # the code that opened it still works, and the page says so
    page = client.get("/case").get_data(as_text=True)  # and still says so after a reload
    assert 'id="code-works"' in page and _names(page, code)
    assert confirm_page(elsewhere, their_rotation, theirs[-4:])[0] == 200
    assert not _opens(app, code) and not _opens(app, mine) and _opens(app, theirs)


def test_a_newer_code_confirmed_in_another_browser_closes_the_case_here(
    app: Flask, client: FlaskClient
) -> None:
    code, (mine, my_rotation), elsewhere, (theirs, their_rotation) = _opened_twice(app, client)
    assert confirm_page(elsewhere, their_rotation, theirs[-4:])[0] == 200
    _status, page = confirm_page(client, my_rotation, mine[-4:])
    assert 'id="rotated-notice"' in page and 'id="case-view" hidden' in page  # closed here
    assert not _names(page, code)  # no false hint that the dead code still works
    assert not _opens(app, code) and not _opens(app, mine) and _opens(app, theirs)


def test_two_tabs_of_one_browser_show_the_newest_code(app: Flask, client: FlaskClient) -> None:
    code = submit_report(client, "report")
    first, first_rotation = new_code_and_rotation(open_case(client, code)[1])
    second, second_rotation = new_code_and_rotation(open_case(client, code)[1])  # tab two
    status, page = confirm_page(client, first_rotation, first[-4:])  # tab one, stale
    assert status == 200 and 'id="superseded"' in page
    assert new_code_and_rotation(page) == (second, second_rotation)  # the newest, shown
    assert confirm_page(client, second_rotation, second[-4:])[0] == 200
    assert _opens(app, second) and not _opens(app, code) and not _opens(app, first)


def test_a_message_sent_without_javascript_says_who_can_read_it(
    app: Flask, client: FlaskClient
) -> None:
    """ "Only the organization can read it" is said only when no copy was kept:
    a kept copy opens with the case's code, as the form itself warns."""
    code = submit_report(client, "report")
    assert open_case(client, code)[0] == 200

    def send(**extra: str) -> str:
        fields = {"csrf_token": csrf_token(client, "/case"), **extra}
        return client.post("/case/message", data=fields, follow_redirects=True).text

    plain = send(message="no copy of this")
    assert "only the organization can read it" in plain
    kept = send(message="a copy of this", keep_copy="1")
    assert "anyone with your case code" in kept
    assert "only the organization can read it" not in kept
