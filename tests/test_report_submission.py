"""Submitting a report through the app: no-JS form and browser JSON API."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from nacl.public import PrivateKey
from nacl.secret import SecretBox
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import OperationalError

from portal.desk.keystore import DeskKeys
from portal.protocol import codes
from portal.protocol.encoding import b64decode
from portal.protocol.envelopes import open_envelope
from portal.protocol.organization import Organization
from portal.protocol.pow import proof_for
from portal.server.config import Config
from portal.server.models import Envelope, Mailbox, SessionRow
from portal.server.web.reporter import COMPARISONS_ALLOWED
from portal.server.web.services import services
from portal.server.web.work import current_hour
from tests.harness.loop import CODE_ON_PAGE, TAG
from tests.harness.sealing import browser_style_request
from tests.harness.web import CSRF as CSRF_VALUE
from tests.harness.web import csrf_token, files_containing


def _counts(app: Flask) -> tuple[int, int]:
    with app.app_context(), services().db.reading() as s:
        return (
            s.scalar(select(func.count()).select_from(Mailbox)) or 0,
            s.scalar(select(func.count()).select_from(Envelope)) or 0,
        )


def _post_form(client: FlaskClient, **fields: str) -> Any:
    data = {"csrf_token": csrf_token(client), **fields}
    return client.post("/report", data=data, follow_redirects=True)


def test_no_js_report_is_sealed_on_arrival_and_shows_a_code(
    app: Flask, client: FlaskClient, config: Config, org: Organization, desk_keys: DeskKeys
) -> None:
    marker = "MARKER-nojs-7781 the militia took my brother"
    resp = _post_form(
        client,
        what_happened=marker,
        where="Riverside district",
        may_contact="yes",
        language="français",
    )
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    match = CODE_ON_PAGE.search(page)
    assert match, page
    code = codes.normalise(TAG.sub("", match.group(1)))
    assert marker not in page
    # Its language links would leave the one page that shows the code: it says so.
    assert "Write your code down before you change the language" in page

    with app.app_context(), services().db.reading() as s:
        mailbox = s.scalars(select(Mailbox)).one()
        envelope = s.scalars(select(Envelope)).one()
        document = services().mailboxes.document(envelope.id)
    assert envelope.sealed_by == "server" and envelope.kind == "report"
    # The stored index is SHA-256(lookup) of the code shown; the wrapped key opens with wrap.
    derived = codes.derive(code, org.code_salt, org.kdf)
    assert mailbox.index == derived.index
    reporter_sk = PrivateKey(SecretBox(derived.wrap).decrypt(mailbox.wrapped_key))
    report = json.loads(open_envelope(document, desk_keys.encrypt))
    assert report["fields"]["what_happened"] == marker
    assert report["fields"]["may_contact"] == "yes"
    assert report["fields"]["language"] == "français"
    assert b64decode(report["reply_pk"]) == bytes(reporter_sk.public_key)
    assert files_containing(config.data_dir, b"MARKER-nojs-7781") == []
    assert files_containing(config.data_dir, code.encode()) == []


def test_missing_description_is_refused_and_stores_nothing(app: Flask, client: FlaskClient) -> None:
    resp = _post_form(client, what_happened="   ", where="somewhere")
    assert resp.status_code == 400
    assert "Please answer this question." in resp.get_data(as_text=True)
    assert _counts(app) == (0, 0)


def test_a_form_sent_back_for_a_missing_answer_keeps_the_copy_and_says_the_files_went(
    app: Flask, client: FlaskClient
) -> None:
    """Without JavaScript, a form refused for a missing answer comes back filled in:
    the words, the choice of a copy, and, since a file input cannot be filled in
    again, a line saying the files must be chosen again (not a silent loss)."""
    data = {
        "csrf_token": csrf_token(client),
        "what_happened": "",
        "where": "by the river",
        "keep_copy": "yes",
        "files": [(io.BytesIO(b"a photo" * 100), "photo.jpg")],
    }
    resp = client.post("/report", data=data, content_type="multipart/form-data")
    assert resp.status_code == 400 and _counts(app) == (0, 0)
    page = resp.get_data(as_text=True)
    assert re.search(r'<input type="checkbox" id="keep_copy"[^>]* checked>', page)
    assert "Your files were not kept: please choose them again." in page
    assert "by the river" in page
    plain = _post_form(client, what_happened="", where="by the river").get_data(as_text=True)
    assert "Your files were not kept" not in plain
    assert not re.search(r'<input type="checkbox" id="keep_copy"[^>]* checked>', plain)


STALE = "This page was out of date, so this report was not sent yet"
# The same, after a report from this browser was stored since the page was shown.
STALE_AFTER_ONE = "nothing from it was stored. Since it was shown, a report from this browser"


def _as_a_browser(client: FlaskClient) -> FlaskClient:
    """Send what a browser sends with a form posted from the portal's own page."""
    client.environ_base["HTTP_SEC_FETCH_SITE"] = "same-origin"
    return client


def test_a_form_without_its_token_stores_nothing_and_comes_back_filled_in(
    app: Flask, client: FlaskClient
) -> None:
    _as_a_browser(client)
    client.get("/report")
    resp = client.post("/report", data={"what_happened": "no token"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and STALE in page
    assert ">no token</textarea>" in page and "already received" not in page
    assert _counts(app) == (0, 0)


def test_back_to_a_corrected_form_after_its_report_went_says_that_report_arrived(
    app: Flask, client: FlaskClient
) -> None:
    """Without JavaScript: a form sent with an answer missing, corrected and sent
    (its code shown), then Back to the first, sent again by the browser. Nothing
    of it is stored, and the page does not tell the reporter, who holds a code,
    that their report was never sent: it says one from this browser arrived."""
    _as_a_browser(client)
    token = csrf_token(client)
    first = {"csrf_token": token, "what_happened": "", "where": "the market"}
    assert client.post("/report", data=first).status_code == 400
    fixed = {**first, "what_happened": "they burned the market"}
    assert CODE_ON_PAGE.search(client.post("/report", data=fixed, follow_redirects=True).text)
    again = client.post("/report", data=first)  # Back, and "send again"
    page = again.get_data(as_text=True)
    assert again.status_code == 400 and _counts(app) == (1, 1)
    assert STALE_AFTER_ONE in page and STALE not in page
    # With no report stored in the session, the usual words.
    other = _as_a_browser(app.test_client())
    csrf_token(other)
    alone = other.post("/report", data={"what_happened": "no token"}).get_data(as_text=True)
    assert STALE in alone and "sent and received" not in alone


@pytest.mark.parametrize("site", [None, "cross-site", "same-site"])
def test_a_form_from_another_site_or_none_said_is_refused_and_echoed_nowhere(
    app: Flask, client: FlaskClient, site: str | None
) -> None:
    client.get("/report")
    headers = {"Origin": "https://elsewhere.example"}
    if site is not None:
        headers["Sec-Fetch-Site"] = site
    resp = client.post("/report", data={"what_happened": "planted words"}, headers=headers)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "expired or was already sent" in page
    assert "planted words" not in page and "<textarea" not in page
    assert _counts(app) == (0, 0)


def test_a_stale_form_for_no_questionnaire_is_refused_not_a_fault(
    app: Flask, client: FlaskClient
) -> None:
    _as_a_browser(client)
    resp = client.post("/report/no-such-form", data={"what_happened": "x"})
    assert resp.status_code == 400 and _counts(app) == (0, 0)


def test_each_stored_form_sent_again_is_told_it_was_received(
    app: Flask, client: FlaskClient
) -> None:
    """A stored, B given back and then stored, A sent again (Back, Send): A's
    receipt is remembered beside B's, so A is not told "nothing was stored"."""
    _as_a_browser(client)
    token = csrf_token(client)
    assert (
        client.post("/report", data={"csrf_token": token, "what_happened": "A"}).status_code == 303
    )
    assert CODE_ON_PAGE.search(client.get("/report/sent").get_data(as_text=True))
    stale = client.post("/report", data={"csrf_token": token, "what_happened": "B"})
    fresh = CSRF_VALUE.search(stale.get_data(as_text=True))
    assert stale.status_code == 400 and fresh is not None
    b = client.post("/report", data={"csrf_token": fresh.group(1), "what_happened": "B"})
    assert b.status_code == 303 and _counts(app) == (2, 2)
    assert CODE_ON_PAGE.search(client.get("/report/sent").get_data(as_text=True))
    for text in ("A", "B"):
        again = client.post("/report", data={"csrf_token": token, "what_happened": text})
        page = again.get_data(as_text=True)
        assert again.status_code == 200 and "already received" in page and STALE not in page
    assert _counts(app) == (2, 2)


def test_a_second_tab_sent_after_the_first_gets_its_words_back_not_a_false_receipt(
    app: Flask, client: FlaskClient
) -> None:
    """Two tabs, two different reports, one form token: the review found the
    second told "already received" while its words were dropped unread."""
    _as_a_browser(client)
    first_tab, second_tab = csrf_token(client), csrf_token(client)
    sent = client.post("/report", data={"csrf_token": first_tab, "what_happened": "first"})
    assert sent.status_code == 303 and _counts(app) == (1, 1)
    assert CODE_ON_PAGE.search(client.get("/report/sent").get_data(as_text=True))
    stale = client.post("/report", data={"csrf_token": second_tab, "what_happened": "second"})
    page = stale.get_data(as_text=True)
    assert stale.status_code == 400 and STALE_AFTER_ONE in page and ">second</textarea>" in page
    assert "already received" not in page and _counts(app) == (1, 1)
    # The page that came back holds a token that works: sent from it, it is stored.
    fresh = CSRF_VALUE.search(page)
    assert fresh is not None
    again = client.post("/report", data={"csrf_token": fresh.group(1), "what_happened": "second"})
    assert again.status_code == 303 and _counts(app) == (2, 2)
    assert CODE_ON_PAGE.search(client.get("/report/sent").get_data(as_text=True))
    # And the first form, sent once more, is still told the truth about itself.
    repeat = client.post("/report", data={"csrf_token": first_tab, "what_happened": "second"})
    assert "already received" in repeat.get_data(as_text=True)


def test_a_form_edited_after_back_is_not_told_it_was_received(
    app: Flask, client: FlaskClient
) -> None:
    _as_a_browser(client)
    token = csrf_token(client)
    assert (
        client.post("/report", data={"csrf_token": token, "what_happened": "as sent"}).status_code
        == 303
    )
    edited = client.post(
        "/report", data={"csrf_token": token, "what_happened": "as sent, and one more thing"}
    )
    page = edited.get_data(as_text=True)
    assert edited.status_code == 400 and STALE_AFTER_ONE in page
    assert ">as sent, and one more thing</textarea>" in page and _counts(app) == (1, 1)


def _stored_then_guessed(app: Flask, client: FlaskClient, words: str) -> None:
    """A report stored without JavaScript, its code seen; then whoever holds the
    browser, while its session lives, posts guesses of what it said with any token."""
    _as_a_browser(client)
    sent = client.post("/report", data={"csrf_token": csrf_token(client), "what_happened": words})
    assert sent.status_code == 303
    assert CODE_ON_PAGE.search(client.get("/report/sent").get_data(as_text=True))


def _guess(client: FlaskClient, words: str) -> Any:
    return client.post("/report", data={"csrf_token": "x", "what_happened": words})


def _told_apart(answer: Any) -> bool:
    return answer.status_code != 400 or "already received" in answer.get_data(as_text=True)


def _same_browser(app: Flask, client: FlaskClient) -> FlaskClient:
    cookie = client.get_cookie("portal_session")
    assert cookie is not None
    other = _as_a_browser(app.test_client())
    other.set_cookie("portal_session", cookie.value)
    return other


def test_whoever_holds_the_browser_cannot_guess_what_was_sent_by_posting_guesses(
    app: Flask, client: FlaskClient
) -> None:
    """Past the comparisons a session allows, even the right guess is answered as
    every wrong one is, and the page that says a report was sent says nothing."""
    _stored_then_guessed(app, client, "option 7")
    for n in range(COMPARISONS_ALLOWED):
        assert not _told_apart(_guess(client, f"option {n}"))
    right = _guess(client, "option 7")
    assert right.status_code == 400 and STALE in right.get_data(as_text=True)
    assert not _told_apart(right)
    assert client.get("/report/sent").status_code == 303
    assert _counts(app) == (1, 1)


def test_a_burst_of_guesses_at_once_gets_no_more_comparisons(
    app: Flask, client: FlaskClient
) -> None:
    """Forty wrong guesses at once, one cookie: each comparison is claimed in the
    database before it is made, so the burst cannot share one count between them."""
    _stored_then_guessed(app, client, "option 7")
    barrier = threading.Barrier(40)

    def guess(n: int) -> None:
        other = _same_browser(app, client)
        barrier.wait()
        _guess(other, f"wrong {n}")

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not _told_apart(_guess(_same_browser(app, client), "option 7"))


def test_an_older_copy_of_the_session_written_back_brings_no_comparison_back(
    app: Flask, client: FlaskClient
) -> None:
    """A request that read the session before the comparisons ran out (or a send
    that stored meanwhile) writes its copy back, marks and all: they stay forgotten."""
    _stored_then_guessed(app, client, "option 7")
    with app.app_context(), services().db.transaction() as s:
        before = s.execute(select(SessionRow.id, SessionRow.sealed)).all()
    for n in range(COMPARISONS_ALLOWED):
        _guess(client, f"option {n}")

    def written_back() -> None:
        with app.app_context(), services().db.transaction() as s:
            for key, sealed in before:
                s.execute(update(SessionRow).where(SessionRow.id == key).values(sealed=sealed))

    written_back()
    assert not _told_apart(_guess(client, "option 7"))
    # nor does the purge of spent things, as it runs hours later, give any back
    with app.app_context():
        services().spent.purge(current_hour() + 8 - 2)
    written_back()
    assert not _told_apart(_guess(client, "option 7"))


def test_a_report_after_the_comparisons_ran_out_is_compared_afresh(
    app: Flask, client: FlaskClient
) -> None:
    """The comparisons ran out, and an older copy of the session came back with the
    forgotten marks: the next report does not inherit a spent count."""
    _stored_then_guessed(app, client, "first")
    with app.app_context(), services().db.transaction() as s:
        before = s.execute(select(SessionRow.id, SessionRow.sealed)).all()
    for n in range(COMPARISONS_ALLOWED):
        _guess(client, f"guess {n}")
    with app.app_context(), services().db.transaction() as s:
        for key, sealed in before:
            s.execute(update(SessionRow).where(SessionRow.id == key).values(sealed=sealed))
    token = csrf_token(client)
    sent = client.post("/report", data={"csrf_token": token, "what_happened": "next"})
    assert sent.status_code == 303
    assert CODE_ON_PAGE.search(client.get("/report/sent").get_data(as_text=True))
    again = client.post("/report", data={"csrf_token": token, "what_happened": "next"})
    assert again.status_code == 200 and "already received" in again.get_data(as_text=True)


def test_a_reporter_within_the_comparisons_keeps_the_receipt(
    app: Flask, client: FlaskClient
) -> None:
    _stored_then_guessed(app, client, "A")
    for edit in range(1, COMPARISONS_ALLOWED):
        assert not _told_apart(_guess(client, f"A, edited {edit}"))
    again = _guess(client, "A")
    assert again.status_code == 200 and "already received" in again.get_data(as_text=True)


def test_a_form_whose_session_ended_while_it_was_written_comes_back_filled_in(
    app: Flask, client: FlaskClient
) -> None:
    _as_a_browser(client)
    token = csrf_token(client)
    client.delete_cookie("portal_session")  # ended: idled out, or its row purged
    resp = client.post("/report", data={"csrf_token": token, "what_happened": "an hour of words"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and STALE in page and ">an hour of words</textarea>" in page
    assert _counts(app) == (0, 0)


def test_a_form_sent_again_stores_nothing_and_tells_the_truth(
    app: Flask, client: FlaskClient
) -> None:
    """Reload or Back after sending (a re-post in a real browser): the review saw
    "Nothing was stored. Please try again", a second report, and the code lost."""
    token = csrf_token(client)
    first = client.post("/report", data={"csrf_token": token, "what_happened": "once"})
    assert first.status_code == 303 and first.headers["Location"].endswith("/report/sent")
    assert CODE_ON_PAGE.search(client.get("/report/sent").get_data(as_text=True))
    for again in (
        client.post("/report", data={"csrf_token": token, "what_happened": "once"}),
        client.get("/report/sent"),  # reloading the page that showed the code
    ):
        page = again.get_data(as_text=True)
        assert again.status_code == 200 and "already received" in page
        assert not CODE_ON_PAGE.search(page) and "Nothing was stored" not in page
    assert _counts(app) == (1, 1)


def test_a_form_raced_from_many_requests_at_once_stores_one_report(
    app: Flask, client: FlaskClient
) -> None:
    """The same form sent six times at once with one cookie: every request passes
    the form check before any commits, so only the spend of the form's token can
    tell them apart. One report; the others wait for it and lead to its code,
    shown once."""
    token = csrf_token(client)
    cookie = client.get_cookie("portal_session")
    assert cookie is not None
    barrier = threading.Barrier(6)
    answers: list[tuple[int, str]] = []

    def send() -> None:
        c = _as_a_browser(app.test_client())
        c.set_cookie("portal_session", cookie.value)
        barrier.wait()
        r = c.post("/report", data={"csrf_token": token, "what_happened": "raced"})
        answers.append((r.status_code, r.get_data(as_text=True)))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [status for status, _ in answers] == [303] * 6
    assert _counts(app) == (1, 1)
    assert CODE_ON_PAGE.search(client.get("/report/sent").get_data(as_text=True))
    assert "already received" in client.get("/report/sent").get_data(as_text=True)


def _sender(app: Flask, client: FlaskClient, token: str, answers: list[int]) -> Callable[[], None]:
    """Sends the client's form again from another request of its session, noting
    the status it was answered with."""
    cookie = client.get_cookie("portal_session")
    assert cookie is not None

    def send() -> None:
        c = _as_a_browser(app.test_client())
        c.set_cookie("portal_session", cookie.value)
        r = c.post("/report", data={"csrf_token": token, "what_happened": "sent twice"})
        answers.append(r.status_code)

    return send


def test_a_form_raced_from_two_requests_keeps_its_code_and_the_next_form_sends(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack of the third review: the request that lost the race put the
    spent token back and overwrote the winner's session, so the code was never
    shown and the browser's next, different report was called already received."""
    from portal.server.web import reporter

    token = csrf_token(client)
    real = reporter._spend_report_form
    barrier = threading.Barrier(2)

    def together(*args: Any) -> bool:  # both requests have passed the form check
        barrier.wait(10)
        return real(*args)

    monkeypatch.setattr(reporter, "_spend_report_form", together)
    answers: list[int] = []
    send = _sender(app, client, token, answers)
    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    monkeypatch.setattr(reporter, "_spend_report_form", real)
    assert answers == [303, 303]  # the loser waited for the winner, then led to its code
    assert CODE_ON_PAGE.search(client.get("/report/sent").get_data(as_text=True))
    nxt = client.post("/report", data={"csrf_token": csrf_token(client), "what_happened": "next"})
    assert nxt.status_code == 303
    assert _counts(app) == (2, 2)


def test_a_form_sent_twice_keeps_its_code_when_the_loser_answers_last(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same form from two requests of one session: the one that finds its
    token spent must not write its session after the winner stored the code
    there (a whole-session rewrite would take the code back)."""
    from portal.server.web import reporter

    token = csrf_token(client)
    real = reporter._spend_report_form
    loser_waits, loser_goes = threading.Event(), threading.Event()

    def in_order(*args: Any) -> bool:
        if threading.current_thread().name == "loser":
            loser_waits.set()  # its session was read before the winner's write
            assert loser_goes.wait(30)
        return real(*args)

    monkeypatch.setattr(reporter, "_spend_report_form", in_order)
    answers: list[int] = []
    send = _sender(app, client, token, answers)
    loser = threading.Thread(target=send, name="loser")
    loser.start()
    assert loser_waits.wait(30)
    send()  # the winner, start to finish, while the loser waits
    loser_goes.set()
    loser.join(30)
    assert answers == [303, 303]  # the winner's code was never shown: the loser leads to it
    assert CODE_ON_PAGE.search(client.get("/report/sent").get_data(as_text=True))
    assert _counts(app) == (1, 1)


def _first_send_held(
    monkeypatch: pytest.MonkeyPatch, then: Callable[[], None]
) -> tuple[threading.Event, threading.Event]:
    """The first send of a form stops where the server seals it (its token spent),
    until ``go``; then ``then`` runs (raising: the send fails there) and the real
    sealing follows."""
    from portal.server.web import reporter

    real = reporter.seal_on_server
    sealing, go = threading.Event(), threading.Event()

    def held(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "first":
            sealing.set()
            assert go.wait(30)
            then()
        return real(*args, **kwargs)

    monkeypatch.setattr(reporter, "seal_on_server", held)
    return sealing, go


def _pressed_again(
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    words: list[str],
    go: threading.Event,
    sealing: threading.Event,
    until: Callable[[], None] = lambda: None,
) -> tuple[Any, list[Any]]:
    """Send ``words[0]``, then, while that send is still at work, the same page's
    form again with each of the others (a second press on Send, a reload): the
    browser drops every answer but the last. ``go`` lets the first go on once
    every later send is waiting for it (and ``until`` has run)."""
    from portal.server.web import sessions

    token = csrf_token(client)
    cookie = client.get_cookie("portal_session")
    assert cookie is not None
    answers: dict[int, Any] = {}
    waiting: set[str] = set()
    real = sessions.as_stored

    def looked() -> Any:  # a later send is waiting for the first one's outcome
        waiting.add(threading.current_thread().name)
        return real()

    monkeypatch.setattr(sessions, "as_stored", looked)

    def send(n: int) -> None:
        c = _as_a_browser(app.test_client())
        c.set_cookie("portal_session", cookie.value)
        answers[n] = c.post("/report", data={"csrf_token": token, "what_happened": words[n]})

    first = threading.Thread(target=send, args=(0,), name="first")
    first.start()
    assert sealing.wait(30)
    later = [
        threading.Thread(target=send, args=(n,), name=f"press {n}") for n in range(1, len(words))
    ]
    for t in later:
        t.start()
    deadline = time.monotonic() + 30
    while len(waiting) < len(later) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(waiting) == len(later), "a later send did not wait"
    until()
    go.set()
    for t in [first, *later]:
        t.join(60)
    return answers[0], [answers[n] for n in range(1, len(words))]


def _words_back(client: FlaskClient, answer: Any, words: str, send: bool = True) -> None:
    """``answer`` is the form again, unsent, with ``words`` in it, and a token that
    sends them (tried, unless ``send`` is False)."""
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and STALE in page and f">{words}</textarea>" in page
    assert "already received" not in page
    fresh = CSRF_VALUE.search(page)
    assert fresh is not None
    if send:
        again = client.post("/report", data={"csrf_token": fresh.group(1), "what_happened": words})
        assert again.status_code == 303


def test_a_form_sent_again_while_the_first_is_storing_shows_the_code(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A double press without JavaScript: the second send found the token spent
    while the first was still sealing, and said "already received, its code was
    shown" at once; the browser had dropped the page that would have shown it, so
    the reporter never saw their code. Now it waits and leads to the code."""
    sealing, go = _first_send_held(monkeypatch, lambda: None)
    dropped, (second,) = _pressed_again(app, client, monkeypatch, ["once", "once"], go, sealing)
    assert dropped.status_code == 303
    assert second.status_code == 303 and second.headers["Location"].endswith("/report/sent")
    assert CODE_ON_PAGE.search(client.get("/report/sent").get_data(as_text=True))
    assert _counts(app) == (1, 1)


def test_many_presses_of_the_page_all_lead_to_its_code_and_spend_no_comparison(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More presses than the session's comparisons while the first send stores:
    each is the same page's, so each leads to the code (the browser shows the
    last), and the session keeps every comparison for a Back and Send later."""
    sealing, go = _first_send_held(monkeypatch, lambda: None)
    words = ["once"] * (COMPARISONS_ALLOWED + 3)
    dropped, later = _pressed_again(app, client, monkeypatch, words, go, sealing)
    assert dropped.status_code == 303
    assert [a.status_code for a in later] == [303] * len(later)
    assert CODE_ON_PAGE.search(client.get("/report/sent").get_data(as_text=True))
    for n in range(1, COMPARISONS_ALLOWED):
        _guess(_as_a_browser(client), f"another {n}")
    back = _guess(client, "once")
    assert back.status_code == 200 and "already received" in back.get_data(as_text=True)
    assert _counts(app) == (1, 1)


def test_a_form_sent_again_while_the_first_fails_gets_its_words_back(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first send is turned away (the derivation queue is full) after the second
    found its token spent: the second must not say "received"; it gives the words
    back with a token that sends them."""
    from portal.server.web.work_gate import Busy

    def busy() -> None:
        raise Busy("slots")

    sealing, go = _first_send_held(monkeypatch, busy)
    dropped, (second,) = _pressed_again(
        app, client, monkeypatch, ["my words", "my words"], go, sealing
    )
    assert dropped.status_code == 503 and _counts(app) == (0, 0)
    _words_back(client, second, "my words")
    assert _counts(app) == (1, 1)


def test_another_tabs_form_sent_while_the_first_is_storing_comes_back_unsent(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealing, go = _first_send_held(monkeypatch, lambda: None)
    dropped, (second,) = _pressed_again(
        app, client, monkeypatch, ["first tab", "second tab"], go, sealing
    )
    assert dropped.status_code == 303
    page = second.get_data(as_text=True)
    assert second.status_code == 400 and STALE in page and ">second tab</textarea>" in page
    assert _counts(app) == (1, 1)


def test_many_presses_while_the_first_send_fails_all_get_the_words_back(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five more presses while the first send waits and is then turned away: the
    browser shows the last answer, so none of them may say "received"."""
    from portal.server.web.work_gate import Busy

    def busy() -> None:
        raise Busy("slots")

    sealing, go = _first_send_held(monkeypatch, busy)
    dropped, later = _pressed_again(app, client, monkeypatch, ["mine"] * 6, go, sealing)
    assert dropped.status_code == 503
    for answer in later:
        _words_back(client, answer, "mine", send=False)
    assert _counts(app) == (0, 0)


def test_a_send_that_never_finishes_is_waited_for_no_longer_than_a_send_can_take(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first send spent the form and marked the session, then did not finish in
    the longest a send can take (its worker stopped; here it hangs until the next
    press has its answer). That press waits no longer, and gets the words back
    with a token that holds."""
    from portal.server.web import reporter

    monkeypatch.setattr(reporter, "SETTLE_MARGIN", 0.0)
    with app.app_context():
        monkeypatch.setattr(services().work_gate, "wait_seconds", 1.0)
    sealing, go = _first_send_held(monkeypatch, lambda: None)
    started = time.monotonic()
    _, (second,) = _pressed_again(
        app, client, monkeypatch, ["stuck", "stuck"], go, sealing, lambda: time.sleep(4.5)
    )
    assert time.monotonic() - started < 30
    _words_back(client, second, "stuck")


def test_a_session_ended_while_a_press_waits_gives_the_words_back_in_a_new_one(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portal.server.web.sessions import ServerSessionInterface

    def ended() -> None:
        interface = app.session_interface
        assert isinstance(interface, ServerSessionInterface)
        with app.app_context():
            interface.store.purge()
            with interface.store.db.transaction() as s:
                s.execute(delete(SessionRow))

    sealing, go = _first_send_held(monkeypatch, lambda: None)
    _, (second,) = _pressed_again(app, client, monkeypatch, ["gone", "gone"], go, sealing, ended)
    cookie = re.search(r"portal_session=([^;]+)", second.headers.get("Set-Cookie", ""))
    assert cookie is not None  # a new session, for the page that came back
    client.set_cookie("portal_session", cookie.group(1))
    _words_back(client, second, "gone")


def test_a_form_from_elsewhere_while_a_send_is_on_its_way_is_echoed_nowhere(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a send is on its way, a post with this session's cookie but not this
    page's token (a sibling site's page, a browser that sends no Sec-Fetch-Site)
    is refused plainly: its words do not come back inside the reporter's form."""
    sealing, go = _first_send_held(monkeypatch, lambda: None)
    answers: list[Any] = []

    def elsewhere() -> None:
        planted = {"csrf_token": "not-this-page", "what_happened": "PLANTED words"}
        for site in ("same-site", None):
            headers = {"Sec-Fetch-Site": site} if site else {}
            answers.append(client.post("/report", data=planted, headers=headers))

    _pressed_again(app, client, monkeypatch, ["mine", "mine"], go, sealing, elsewhere)
    for answer in answers:
        assert answer.status_code == 400 and "PLANTED" not in answer.get_data(as_text=True)


def test_a_request_reading_an_old_session_does_not_undo_a_report_stored_meanwhile(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session over five minutes old is given a new deadline by the next request
    that reads it. That request read it before a report from another tab stored
    its code there; rewriting the whole session at its end took the code back,
    and put the spent form token back, so no form of that session sent again."""
    from portal.server.web import reporter, sessions

    monkeypatch.setattr(sessions, "REFRESH_SECONDS", -60)  # every session counts as old
    real = reporter._blank_page
    reading, go = threading.Event(), threading.Event()

    def slow_page(q: Any) -> Any:
        if threading.current_thread().name == "reader":
            reading.set()
            assert go.wait(30)
        return real(q)

    token = csrf_token(client)
    monkeypatch.setattr(reporter, "_blank_page", slow_page)
    cookie = client.get_cookie("portal_session")
    assert cookie is not None

    def read() -> None:
        c = _as_a_browser(app.test_client())
        c.set_cookie("portal_session", cookie.value)
        c.get("/report")

    reader = threading.Thread(target=read, name="reader")
    reader.start()
    assert reading.wait(30)
    sent = client.post("/report", data={"csrf_token": token, "what_happened": "stored"})
    assert sent.status_code == 303
    go.set()
    reader.join(30)
    assert CODE_ON_PAGE.search(client.get("/report/sent").get_data(as_text=True))
    nxt = client.post("/report", data={"csrf_token": csrf_token(client), "what_happened": "next"})
    assert nxt.status_code == 303 and _counts(app) == (2, 2)


def test_a_report_that_fails_to_store_shows_no_code(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault of the third review: storage failing for another reason than a
    clash (a full disk) left the code in the session, shown for a case that
    does not exist."""
    from portal.server.web import sessions

    def full_disk(_s: object) -> None:
        raise OperationalError("INSERT", {}, Exception("database or disk is full"))

    app.testing = False  # as in production: the error page, and the session saved
    token = csrf_token(client)
    monkeypatch.setattr(sessions, "write_within", full_disk)
    assert (
        client.post("/report", data={"csrf_token": token, "what_happened": "x"}).status_code == 500
    )
    monkeypatch.undo()
    assert _counts(app) == (0, 0)
    assert not CODE_ON_PAGE.search(client.get("/report/sent").get_data(as_text=True))


def test_oversized_form_is_refused(app: Flask, client: FlaskClient) -> None:
    resp = _post_form(client, what_happened="x" * (200 * 1024))
    assert resp.status_code == 400 and "longer than" in resp.get_data(as_text=True)
    assert _counts(app) == (0, 0)
    resp = client.post(
        "/report",
        data={"csrf_token": csrf_token(client), "what_happened": "x" * (3 * 1024 * 1024)},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 413
    assert _counts(app) == (0, 0)


def _api(client: FlaskClient, body: Any, token: str | None = None) -> Any:
    token = token if token is not None else csrf_token(client)
    headers = {"Content-Type": "application/json", "X-CSRFToken": token}
    offer = client.post("/api/pow", headers=headers)
    if offer.status_code == 200:  # a spent token gets no challenge: the post fails on CSRF
        body = {**body, "pow": proof_for(offer.get_json())}
    return client.post("/api/reports", data=json.dumps(body), headers=headers)


def test_browser_sealed_report_is_stored_as_sent(
    app: Flask, client: FlaskClient, org: Organization, desk_keys: DeskKeys
) -> None:
    code, body = browser_style_request(org, "MARKER-api-5512")
    resp = _api(client, body)
    assert resp.status_code == 201, resp.get_json()
    with app.app_context(), services().db.reading() as s:
        mailbox = s.scalars(select(Mailbox)).one()
        envelope = s.scalars(select(Envelope)).one()
        document = services().mailboxes.document(envelope.id)
    assert mailbox.index == codes.derive(code, org.code_salt, org.kdf).index
    assert envelope.sealed_by == "browser"
    assert json.loads(open_envelope(document, desk_keys.encrypt))["fields"] == {
        "what_happened": "MARKER-api-5512"
    }


def _with(body: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


@pytest.mark.parametrize(
    ("path", "value", "status", "reason"),
    [
        (["envelope", "kind"], "message", 400, "kind"),
        (["envelope", "sealed_by"], "server", 400, "sealed_by"),
        (["envelope", "recipients"], [{"kid": "0" * 32, "key": "A" * 107}], 400, "unknown_kid"),
        (["envelope", "body"], "AAAA", 400, "padding"),
        (["mailbox", "index"], "short", 400, "mailbox"),
        (["mailbox", "wrapped_key"], None, 400, "mailbox"),
        (["extra"], 1, 400, "shape"),
    ],
)
def test_malformed_api_requests_are_refused(
    app: Flask,
    client: FlaskClient,
    org: Organization,
    path: list[str],
    value: Any,
    status: int,
    reason: str,
) -> None:
    _, body = browser_style_request(org, "bad")
    resp = _api(client, _with(body, path, value))
    assert resp.status_code == status
    assert resp.get_json()["error"] == reason
    assert resp.get_json()["message"]
    assert _counts(app) == (0, 0)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b'"text"'])
def test_non_object_json_is_refused(app: Flask, client: FlaskClient, raw: bytes) -> None:
    resp = client.post(
        "/api/reports",
        data=raw,
        headers={"Content-Type": "application/json", "X-CSRFToken": csrf_token(client)},
    )
    assert resp.status_code == 400
    assert _counts(app) == (0, 0)


def test_api_without_csrf_token_is_refused(
    app: Flask, client: FlaskClient, org: Organization
) -> None:
    client.get("/report")
    _, body = browser_style_request(org, "x")
    resp = client.post("/api/reports", json=body)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "csrf"
    assert _counts(app) == (0, 0)


def test_api_token_cannot_be_replayed(app: Flask, client: FlaskClient, org: Organization) -> None:
    token = csrf_token(client)
    assert _api(client, browser_style_request(org, "one")[1], token).status_code == 201
    assert _api(client, browser_style_request(org, "two")[1], token).status_code == 400
    assert _counts(app) == (1, 1)


def _proof(client: FlaskClient, token: str) -> dict[str, object]:
    offer = client.post("/api/pow", headers={"X-CSRFToken": token})
    assert offer.status_code == 200
    return proof_for(offer.get_json())


def _send(client: FlaskClient, body: dict[str, Any], token: str, pow: dict[str, object]) -> Any:
    headers = {"Content-Type": "application/json", "X-CSRFToken": token}
    return client.post("/api/reports", data=json.dumps({**body, "pow": pow}), headers=headers)


def test_a_second_tab_whose_token_was_spent_renews_it_and_sends_with_the_same_proof(
    app: Flask, client: FlaskClient, org: Organization
) -> None:
    """What the page's script does when the portal no longer holds its token: the
    refused send stored nothing and left its proof unspent; a token from
    /api/form-token sends it, the second report stored beside the first."""
    first_tab = csrf_token(client)
    second_tab = csrf_token(client)
    second_proof = _proof(client, second_tab)
    assert _api(client, browser_style_request(org, "one")[1], first_tab).status_code == 201
    _, body = browser_style_request(org, "two")
    refused = _send(client, body, second_tab, second_proof)
    assert refused.status_code == 400 and refused.get_json()["error"] == "csrf"
    assert _counts(app) == (1, 1)
    renewed = client.get("/api/form-token")
    assert renewed.status_code == 200
    assert renewed.get_json()["new_session"] is False  # the same session: its uploads stand
    assert renewed.headers["Cache-Control"] == "no-store"
    assert renewed.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "Access-Control-Allow-Origin" not in renewed.headers
    assert _send(client, body, renewed.get_json()["token"], second_proof).status_code == 201
    assert _counts(app) == (2, 2)
    # and the renewed token is spent by what it sent, as the page's own would be
    assert (
        _api(
            client, browser_style_request(org, "three")[1], renewed.get_json()["token"]
        ).status_code
        == 400
    )


def test_a_page_whose_session_ended_renews_its_token_in_a_new_session(
    app: Flask, client: FlaskClient, org: Organization
) -> None:
    token = csrf_token(client)
    proof = _proof(client, token)
    client.delete_cookie("portal_session")  # ended, as after hours without a request
    _, body = browser_style_request(org, "written over an afternoon")
    assert _send(client, body, token, proof).get_json()["error"] == "csrf"
    answer = client.get("/api/form-token").get_json()
    assert answer["new_session"] is True  # the page sends its files again before the report
    renewed = answer["token"]
    assert client.get_cookie("portal_session") is not None
    assert _send(client, body, renewed, proof).status_code == 201
    assert _counts(app) == (1, 1)


def test_a_renewed_token_does_not_hold_in_another_browser(
    app: Flask, client: FlaskClient, org: Organization
) -> None:
    """A token is worth only the session it was made for: another site that made a
    reporter's browser fetch one could not read it, and one read elsewhere does
    not send for them."""
    mine = client.get("/api/form-token").get_json()["token"]
    other = app.test_client()
    other.get("/report")
    _, body = browser_style_request(org, "not theirs")
    assert _send(other, body, mine, _proof(client, mine)).get_json()["error"] == "csrf"
    assert _counts(app) == (0, 0)


def test_an_index_already_in_use_is_refused_without_change(
    app: Flask, client: FlaskClient, org: Organization
) -> None:
    _, body = browser_style_request(org, "first")
    assert _api(client, body).status_code == 201
    _, second = browser_style_request(org, "second")
    second["mailbox"]["index"] = body["mailbox"]["index"]  # another case, the same index
    resp = _api(client, second)
    assert resp.status_code == 409
    assert _counts(app) == (1, 1)


def test_oversized_envelope_is_refused(app: Flask, client: FlaskClient, org: Organization) -> None:
    _, body = browser_style_request(org, "y" * (70 * 1024))
    resp = _api(client, body)
    assert resp.status_code == 413
    assert _counts(app) == (0, 0)


def test_a_refused_report_leaves_nothing_behind(
    app: Flask, client: FlaskClient, org: Organization, config: Config
) -> None:
    """A report refused for its mailbox (a clash) stores no row, no ciphertext and
    no file: the envelope goes into its row in the one transaction that fails."""
    _, good = browser_style_request(org, "kept")
    assert _api(client, good).status_code == 201
    _, dup = browser_style_request(org, "dropped")
    dup["mailbox"]["index"] = good["mailbox"]["index"]
    assert _api(app.test_client(), dup).status_code == 409
    with app.app_context(), services().db.reading() as s:
        documents = list(s.scalars(select(Envelope.document)))
    assert len(documents) == 1 and documents[0] is not None
    assert [p for p in Path(config.blob_dir).rglob("*") if p.is_file()] == []


def test_a_form_found_spent_is_not_put_back_in_the_session(app: Flask) -> None:
    """A request that finds its form spent by another (a race) leaves the fresh
    token in its session: putting the spent one back would make the reporter's
    next form dead on arrival."""
    from flask import session

    from portal.server.web.reporter import FormSpent, _form_digest, spend_form_within
    from portal.server.web.work import current_hour

    with app.test_request_context("/report", method="POST"):
        session["csrf_token"] = "a" * 40
        assert services().spent.spend(_form_digest("a" * 40), current_hour())  # the winner
        with pytest.raises(FormSpent):
            services().db.joined(spend_form_within)
        assert session["csrf_token"] not in ("a" * 40, None)


def test_a_case_key_already_in_use_is_refused_as_a_clash_and_spends_its_proof(
    app: Flask, client: FlaskClient, org: Organization
) -> None:
    """A new index but a case key already taken: the index check passes and the
    database refuses the row. That refusal is a clash (409), not a crash, and the
    proof that bought it is spent, so it cannot be sent again for free."""
    _, body = browser_style_request(org, "first")
    assert _api(client, body).status_code == 201
    _, second = browser_style_request(org, "second")
    second["mailbox"] = {**second["mailbox"], "public_key": body["mailbox"]["public_key"]}
    token = csrf_token(client)
    headers = {"Content-Type": "application/json", "X-CSRFToken": token}
    paid = {**second, "pow": proof_for(client.post("/api/pow", headers=headers).get_json())}
    resp = client.post("/api/reports", data=json.dumps(paid), headers=headers)
    assert resp.status_code == 409, resp.get_json()
    again = client.post("/api/reports", data=json.dumps(paid), headers=headers)
    assert again.status_code != 201 and again.get_json()["error"] == "work"
    assert _counts(app) == (1, 1)
