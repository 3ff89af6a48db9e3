"""Languages: complete catalogs, choosing and switching, direction, translated errors."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient

from portal.common.i18n import catalog_path, format_size
from portal.common.languages import COOKIE, LANGUAGES
from tests.harness.web import csrf_token

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def source_messages() -> set[str]:
    """Every translatable string in the code today, read as `make messages` reads it."""
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found = set()
    keywords = {**DEFAULT_KEYWORDS, "plural_variants": (1, 2)}  # as the Makefile's -k says
    for _file, _line, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.fixture(scope="module")
def sources() -> set[str]:
    messages = source_messages()
    assert len(messages) > 150, "extraction found too little: is babel.cfg right?"
    return messages


@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_every_string_is_translated_in_every_catalog(code: str, sources: set[str]) -> None:
    with catalog_path(code).open("rb") as fh:
        catalog = read_po(fh, locale=code)
    entries = {_forms_of(m.id)[0]: m for m in catalog if m.id}
    missing = sorted(sources - set(entries))
    assert not missing, f"{code}: not in the catalog (run `make messages`): {missing[:5]}"
    untranslated = sorted(m for m in sources if not all(_forms(entries[m])))
    assert not untranslated, f"{code}: untranslated: {untranslated[:5]}"
    fuzzy = sorted(m for m in sources if entries[m].fuzzy)
    assert not fuzzy, f"{code}: fuzzy (needs review): {fuzzy[:5]}"
    stale = sorted(set(entries) - sources)
    assert not stale, f"{code}: no longer used (run `make messages`): {stale[:5]}"
    problems = [(m.id, errors) for m, errors in catalog.check()]
    assert not problems, f"{code}: {problems[:3]}"
    for message in entries.values():
        wanted = set(PLACEHOLDER.findall(_forms_of(message.id)[-1]))
        *counted, other = _forms(message)
        assert set(PLACEHOLDER.findall(other)) == wanted, message.id
        for form in counted:  # "one", "two" may spell the number out ("ثانيتان")
            assert set(PLACEHOLDER.findall(form)) <= wanted, (message.id, form)


def _forms_of(text: str | tuple[str, ...]) -> tuple[str, ...]:
    return text if isinstance(text, tuple) else (text,)


def _forms(message: Message) -> tuple[str, ...]:
    return _forms_of(message.string)


class _VisibleText(HTMLParser):
    """Text a reader sees or hears: text nodes and the attributes read aloud."""

    SPOKEN = ("aria-label", "alt", "title", "placeholder")

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0
        self._lang_stack: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        if values.get("translate") == "no" or values.get("lang") not in (None, "ar"):
            # Language names and codes are meant to stay as they are.
            self._skip += 1
            self._lang_stack.append(tag)
        for name in self.SPOKEN:
            if values.get(name):
                self.texts.append(str(values[name]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
        if self._lang_stack and self._lang_stack[-1] == tag:
            self._lang_stack.pop()
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append(data.strip())


# Words that are the same in every language: names of things.
NAMES = {"Tor", "JavaScript", "JPEG", "Esc", "onion", "Test", "Rights", "Network", "KB"}
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def english_left(html: str) -> list[str]:
    parser = _VisibleText()
    parser.feed(html)
    # A {placeholder} the page's script fills in is a name, not a word to translate.
    return [t for t in parser.texts if set(LATIN_WORD.findall(PLACEHOLDER.sub("", t))) - NAMES]


def _arabic(client: FlaskClient) -> FlaskClient:
    client.set_cookie(COOKIE, "ar")
    return client


@pytest.mark.parametrize("path", ["/", "/report", "/case", "/safety", "/no-such-page"])
def test_arabic_pages_have_no_english_left(client: FlaskClient, path: str) -> None:
    """Any text a template forgot to mark for translation shows up here."""
    html = _arabic(client).get(path).get_data(as_text=True)
    assert english_left(html) == []


def test_arabic_error_pages_have_no_english_left(client: FlaskClient) -> None:
    _arabic(client)
    token = csrf_token(client, "/report")
    refused = client.post("/report", data={"csrf_token": token, "what_happened": ""})
    assert refused.status_code == 400
    assert english_left(refused.text) == []
    opened = client.post("/case", data={"code": "1" * 24})
    assert opened.status_code in (400, 404)
    assert english_left(opened.text) == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr-FR,fr;q=0.9,en;q=0.5", "fr"),
        ("es-419,es;q=0.9", "es"),
        ("ar-EG,ar;q=0.9,en;q=0.3", "ar"),
        ("de-DE,ja;q=0.8", "en"),
        ("", "en"),
    ],
)
def test_language_follows_the_browser(client: FlaskClient, header: str, expected: str) -> None:
    page = client.get("/", headers={"Accept-Language": header})
    assert page.headers["Content-Language"] == expected
    direction = LANGUAGES[expected].direction
    assert f'<html lang="{expected}" dir="{direction}">' in page.text


def test_switcher_on_every_page_works_without_javascript(client: FlaskClient) -> None:
    for path in ("/", "/report", "/case", "/safety"):
        page = client.get(path, headers={"Accept-Language": "en"}).text
        for code, language in LANGUAGES.items():
            link = re.search(rf'<a href="(/language/{code}\?next=[^"]+)" lang="{code}"', page)
            assert link, f"no link to {language.name} on {path}"
    switched = client.get("/language/ar?next=/report")
    assert switched.status_code == 303
    assert switched.headers["Location"] == "/report"
    cookie = switched.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=ar;")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Expires" not in cookie and "Max-Age" not in cookie, "must end with the browser session"
    page = client.get("/report", headers={"Accept-Language": "en"})
    assert '<html lang="ar" dir="rtl">' in page.text
    assert 'aria-current="true">العربية' in page.text


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "/staff/", ""]
)
def test_switcher_cannot_redirect_elsewhere(client: FlaskClient, target: str) -> None:
    response = client.get("/language/fr", query_string={"next": target})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_switcher_brings_case_pages_back_to_the_code_form(client: FlaskClient) -> None:
    response = client.get("/language/es", query_string={"next": "/case/confirm"})
    assert response.headers["Location"] == "/case"


def test_unknown_language_is_refused(client: FlaskClient) -> None:
    response = client.get("/language/xx?next=/")
    assert response.status_code == 404
    assert "Set-Cookie" not in response.headers or COOKIE not in response.headers["Set-Cookie"]


def test_forged_cookie_falls_back_to_the_browser(client: FlaskClient) -> None:
    client.set_cookie(COOKIE, "<script>")
    page = client.get("/", headers={"Accept-Language": "es"})
    assert page.headers["Content-Language"] == "es"


def test_codes_and_fingerprints_stay_left_to_right_in_arabic(client: FlaskClient) -> None:
    page = _arabic(client).get("/case").text
    assert re.search(r'<span class="fingerprint" dir="ltr" translate="no">[0-9a-f ]+</span>', page)
    assert re.search(r'<input type="text" id="code"[^>]*dir="ltr"', page)
    assert 'class="code" dir="ltr"' in page
    assert '<span dir="ltr">1234 5678 …</span>' in page


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("fr", "Ce formulaire a expiré"),
        ("es", "Este formulario ha caducado"),
        ("ar", "انتهت صلاحية هذا النموذج"),
    ],
)
def test_api_errors_speak_the_readers_language(client: FlaskClient, code: str, words: str) -> None:
    response = client.post(
        "/api/case/open", json={"lookup": "x"}, headers={"Accept-Language": code}
    )
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "csrf"
    assert body["message"].startswith(words)


def test_api_error_for_a_missing_case_is_translated(client: FlaskClient) -> None:
    token = csrf_token(client, "/case")
    response = client.post(
        "/api/case/open",
        json={"lookup": "A" * 43},
        headers={"X-CSRFToken": token, "Accept-Language": "ar"},
    )
    assert response.status_code == 404
    assert response.get_json() == {
        "error": "no_case",
        "message": "لم نتمكن من فتح قضية بهذا الرمز. يُرجى التحقق من كل رقم والمحاولة مرة أخرى.",
    }


@pytest.mark.parametrize(
    ("code", "size", "shown"),
    [
        ("en", 2_254_857_830, "2.1 GB"),
        ("fr", 2_254_857_830, "2,1 Go"),
        ("ar", 5 * 1024 * 1024, "5 ميغابايت"),
        ("es", 1, "1 KB"),
        ("en", 1500, "2 KB"),
    ],
)
def test_sizes_are_in_the_readers_words_and_number_format(
    app: Flask, code: str, size: int, shown: str
) -> None:
    with app.test_request_context("/", headers={"Accept-Language": code}):
        assert format_size(size) == shown


def test_free_text_follows_the_writers_direction(client: FlaskClient) -> None:
    """An Arabic report typed on an English page (or the reverse) reads right."""
    page = client.get("/report", headers={"Accept-Language": "en"}).text
    for field in ("what_happened", "when", "where", "who_affected", "who_responsible", "needs"):
        tag = re.search(rf'<(?:textarea|input)[^>]*id="{field}"[^>]*>', page)
        assert tag and 'dir="auto"' in tag.group(0), field
    assert 'id="message" name="message"' in client.get("/case").text
    assert re.search(r'<textarea id="message"[^>]*dir="auto"', client.get("/case").text)
