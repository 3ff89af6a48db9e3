"""Safety on a watched device: quick exit and the staying-safe page everywhere,
the onion notice, and nothing that lingers in the browser."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from flask.testing import FlaskClient

from portal.common.languages import LANGUAGES
from portal.server.app import create_app
from portal.server.config import Config

REPORTER_PAGES = ["/", "/report", "/case", "/safety", "/no-such-page"]
ONION = "portalxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion"


@pytest.mark.parametrize("path", REPORTER_PAGES)
def test_every_page_has_a_plain_quick_exit_link_first(client: FlaskClient, path: str) -> None:
    page = client.get(path).text
    body = page[page.index("<body>") :]
    first_links = re.findall(r"<a [^>]*>", body)[:2]
    assert 'class="skip-link"' in first_links[0]
    assert 'id="quick-exit" href="https://www.wikipedia.org/"' in first_links[1]
    assert 'rel="noreferrer noopener"' in first_links[1]


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
