"""Safety on a watched device: quick exit and the staying-safe page everywhere,
the onion notice, and nothing that lingers in the browser."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

import pytest
from flask.testing import FlaskClient

from portal.common.languages import LANGUAGES
from portal.server.app import create_app
from portal.server.config import Config, ConfigError, load_config
from tests.harness.loop import new_code_and_rotation, open_case, submit_report
from tests.harness.web import csrf_token, run_sql

REPORTER_PAGES = ["/", "/report", "/case", "/safety", "/no-such-page"]
ONION = "portalxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion"


@pytest.mark.parametrize("path", REPORTER_PAGES)
def test_every_page_has_a_plain_quick_exit_link_first(client: FlaskClient, path: str) -> None:
    page = client.get(path).text
    body = page[page.index("<body>") :]
    first_links = re.findall(r"<a [^>]*>", body)[:2]
    assert 'class="skip-link"' in first_links[0]
    assert 'id="quick-exit" href="/exit"' in first_links[1]
    assert 'rel="noreferrer"' in first_links[1]


def test_quick_exit_goes_on_to_the_outside_page_and_ends_the_session(
    client: FlaskClient, config: Config
) -> None:
    client.get("/report")
    token = client.get_cookie("portal_session")
    assert token is not None
    gone = client.get("/exit")
    assert gone.status_code == 303 and gone.headers["Location"] == config.quick_exit_url
    assert gone.headers["Clear-Site-Data"] == '"cache", "cookies", "storage"'
    assert client.get_cookie("portal_session") is None
    assert run_sql(config, "SELECT count(*) FROM sessions") == [(0,)]


def _with_a_case_pending_a_new_code(client: FlaskClient) -> str:
    """A no-JS case open, its new code shown and not confirmed; the reporter's code."""
    code = submit_report(client, "they watch my phone")
    assert open_case(client, code)[0] == 200
    return code


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Purpose": "prefetch"},
    ],
)
def test_a_quick_exit_another_site_or_a_prefetch_asks_for_ends_and_clears_nothing(
    client: FlaskClient, config: Config, headers: dict[str, str]
) -> None:
    """A link on another site (the session cookie is SameSite=Strict, but a browser
    that ignored it would send it) or a prefetch must not log the reporter out
    or wipe their portal data: it is only sent on."""
    _with_a_case_pending_a_new_code(client)
    gone = client.get("/exit", headers=headers)
    assert gone.status_code == 303 and gone.headers["Location"] == config.quick_exit_url
    assert "Clear-Site-Data" not in gone.headers and "Set-Cookie" not in gone.headers
    assert 'id="case-heading"' in client.get("/case").text.split('<div id="case-view"')[1][:200]


def test_quick_exit_without_a_session_cookie_clears_nothing(client: FlaskClient) -> None:
    gone = client.get("/exit")
    assert gone.status_code == 303 and "Clear-Site-Data" not in gone.headers


def test_quick_exit_leaves_even_when_ending_the_session_fails(
    client: FlaskClient, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The way out never fails: the browser still goes, told to drop its cookies."""
    from portal.server.web import case_session

    _with_a_case_pending_a_new_code(client)
    client.set_cookie("portal_lang", "ar")

    def broken() -> None:
        raise RuntimeError("the database is locked")

    monkeypatch.setattr(case_session, "leave", broken)
    gone = client.get("/exit")
    assert gone.status_code == 303 and gone.headers["Location"] == config.quick_exit_url
    assert gone.headers["Clear-Site-Data"] == '"cache", "cookies", "storage"'
    assert client.get_cookie("portal_session") is None
    assert client.get_cookie("portal_lang") is None


def test_a_quick_exit_address_that_could_break_its_redirect_is_refused_at_start() -> None:
    for bad in ("https://www.wikipedia.org/\n", "javascript:alert(1)", "https://a b/"):
        with pytest.raises(ConfigError):
            load_config({"PORTAL_QUICK_EXIT_URL": bad})


def test_after_quick_exit_back_finds_no_case_no_code_and_no_hint(
    client: FlaskClient, config: Config
) -> None:
    """A no-JS case open with a new code not yet confirmed. After Quick exit,
    whoever holds the device presses Back (the page is fetched again) or sends
    the session's old cookie by hand: the portal shows the empty code form, with
    neither the case, nor the new code, nor the last digits of the code that
    works. The new code is dropped, so the reporter's own code still opens."""
    code = _with_a_case_pending_a_new_code(client)
    _, page = open_case(client, code)
    pending, _ = new_code_and_rotation(page)
    old_cookie = client.get_cookie("portal_session")
    assert old_cookie is not None
    with client.session_transaction() as stored:
        line = stored["line"]
    assert run_sql(config, "SELECT count(*) FROM mailboxes WHERE pending_index IS NOT NULL") == [
        (1,)
    ]
    assert client.get("/exit").status_code == 303
    # The new code is dropped, and the session's lineage spent: any token a request
    # racing the exit moved the session to is dead too.
    assert run_sql(config, "SELECT count(*) FROM mailboxes WHERE pending_index IS NOT NULL") == [
        (0,)
    ]
    spent = hashlib.sha256(b"session-line:" + line.encode()).digest()
    assert run_sql(config, "SELECT count(*) FROM spent_tokens WHERE digest = :d", d=spent) == [(1,)]

    back = client.get("/case").text
    client.set_cookie("portal_session", old_cookie.value)
    replayed = client.get("/case").text
    for shown in (back, replayed):
        assert '<div id="case-view" hidden>' in shown and 'id="closed-notice"' not in shown
        assert pending[-4:] not in shown and code[-4:] not in shown
        assert "<title>Open your case" in shown
    assert open_case(client, pending)[0] == 404  # the unconfirmed code never opens
    assert open_case(client, code)[0] == 200  # the reporter's own code still does


@pytest.mark.parametrize("path", REPORTER_PAGES)
def test_every_page_links_to_staying_safe(client: FlaskClient, path: str) -> None:
    assert client.get(path).text.count('href="/safety"') >= 2  # menu and footer


@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_staying_safe_covers_what_a_reporter_needs(client: FlaskClient, code: str) -> None:
    page = client.get("/safety", headers={"Accept-Language": code})
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    headings = re.findall(r'<h2 id="([a-z-]+)-heading">', page.text)
    assert headings == ["tor", "device", "code", "sees"]
    assert page.text.count("<li><strong>") == 3, "the three Tor Browser security levels"


def test_code_fields_never_autocomplete_and_pages_are_not_stored(client: FlaskClient) -> None:
    page = client.get("/case")
    assert page.headers["Cache-Control"] == "no-store"
    # A text field (browsers offer to save passwords, never plain text), not filled in
    # from history, grouped like the code, its digits hidden until shown.
    assert 'type="password"' not in page.text
    code_input = re.search(r'<input type="text" id="code"[^>]*>', page.text)
    assert code_input and 'autocomplete="off"' in code_input.group(0)
    assert 'class="code-input masked"' in code_input.group(0)
    assert 'placeholder="0000 0000 0000 0000 0000 0000"' in code_input.group(0)
    assert 'id="code-show"' in page.text
    assert re.search(
        r'<form method="post" action="/case" id="case-form" autocomplete="off"', page.text
    )


def test_language_choice_is_the_only_cookie_and_ends_with_the_session(
    client: FlaskClient,
) -> None:
    response = client.get("/language/fr?next=/")
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 1
    assert "Expires" not in cookies[0] and "Max-Age" not in cookies[0]


@pytest.fixture
def onion_config(config: Config) -> Config:
    return replace(config, onion_address=ONION, onion_notice=True)


def test_onion_notice_shown_off_the_onion_address(onion_config: Config) -> None:
    client = create_app(onion_config).test_client()
    page = client.get("/", headers={"Host": "reports.example.org"}).text
    assert 'id="onion-notice"' in page
    assert f'<span class="onion-address" dir="ltr" translate="no">{ONION}</span>' in page


def test_onion_notice_not_shown_on_the_onion_address(onion_config: Config) -> None:
    client = create_app(onion_config).test_client()
    assert 'id="onion-notice"' not in client.get("/", headers={"Host": ONION}).text
    assert 'id="onion-notice"' not in client.get("/", headers={"Host": f"{ONION}:80"}).text


def test_onion_notice_is_off_unless_configured(config: Config) -> None:
    client = create_app(replace(config, onion_address=ONION)).test_client()
    page = client.get("/", headers={"Host": "reports.example.org"}).text
    assert 'id="onion-notice"' not in page
    assert ONION in client.get("/safety").text, "the safety page still gives the address"


def test_quick_exit_after_leave_spends_the_sessions_new_lineage_too(
    client: FlaskClient, config: Config
) -> None:
    """Leave gives the session a lineage of its own; Quick exit spends that one,
    so no token of the session outlives the exit, case open or not."""
    _with_a_case_pending_a_new_code(client)
    client.post("/case/leave", data={"csrf_token": csrf_token(client, "/case")})
    with client.session_transaction() as stored:
        line = stored["line"]
    assert client.get("/exit").status_code == 303
    spent = hashlib.sha256(b"session-line:" + line.encode()).digest()
    assert run_sql(config, "SELECT count(*) FROM spent_tokens WHERE digest = :d", d=spent) == [(1,)]
