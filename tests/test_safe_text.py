"""Control and bidi characters from reporters never reach the desk operator raw:
the escaping functions, and the attack through the real portal, desk and CLI."""

from __future__ import annotations

import io
import json
import os
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient

from portal.cli import main
from portal.cli.output import CliError
from portal.common.safe_text import clean_name, for_terminal, json_for_terminal
from portal.desk import cases
from portal.desk import evidence as desk_files
from portal.desk.keystore import DeskKeys
from portal.desk.names import case_name
from portal.desk.store import DeskStore
from portal.desk.web import create_desk_app
from portal.protocol import reports
from portal.protocol.organization import Organization
from tests.harness import sealing
from tests.harness.loop import to_desk
from tests.harness.web import CSRF, PASSPHRASE, api_post, csrf_token

ESC_CLEAR = "\x1b[2J"
OSC_TITLE = "\x1b]0;pwned\x07"
C1_CSI = "\x9b31m"
RLO = "\u202e"
ZWJ = "\u200d"
ATTACK = f"start{ESC_CLEAR}{OSC_TITLE}{C1_CSI}red {RLO}gpj.exe ad{ZWJ}min{ZWJ}end"
VISIBLE = ["\\x1b[2J", "\\x1b]0;pwned\\x07", "\\x9b31m", "\\u202egpj.exe", "ad\\u200dmin"]

BIDI = ["\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F))]
BIDI += [*map(chr, range(0x2066, 0x206A))]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\u2061", "\u2062", "\u2063", "\u2064"]
INVISIBLE += ["\ufeff", "\u180e", "\u00ad"]
TAGS = ["\U000e0001", "\U000e0020", "\U000e0041", "\U000e007f"]
C0 = [chr(c) for c in range(0x20)]
C1 = [chr(c) for c in range(0x80, 0xA0)]
OTHER = ["\x7f", "\ue000", "\U000f0000", "\u0378", "\U0010ffff", "\ud800", "\u2028", "\u2029"]
HIDDEN = C0 + C1 + BIDI + INVISIBLE + TAGS + OTHER

ORDINARY = [
    "ما رأيناه في الشارع أمس",  # Arabic
    "می‌خواهم گزارش بدهم",  # Persian, with its zero-width non-joiner
    "မြန်မာဘာသာဖြင့် ရေးထားသည်",  # Burmese
    "क्‍ष और हिन्दी",  # Devanagari with a joiner after a virama
    "👨‍👩‍👧 👩🏽‍💻 🏳️‍🌈 🇺🇦 ✊🏿",  # emoji sequences with joiners, modifiers, flags
    "中文 日本語 한국어 Ελληνικά Русский עברית",
    "café naïve e\u0301 Ⅻ ½ ∑ € ₿ «quoted» — ok",
    "C:\\path\\to\\file and \\u202e typed by hand",
]


def _bad(char: str) -> bool:
    """A character that must never reach the terminal: C0 other than line feed and
    tab, DEL, C1, bidi controls, zero-width and format characters, tags."""
    return (
        (ord(char) < 0x20 and char not in "\n\t")
        or 0x7F <= ord(char) < 0xA0
        or unicodedata.category(char) in {"Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
    )


def _raw(text: str) -> list[str]:
    return sorted({c for c in text if _bad(c)})


# --- the functions ---------------------------------------------------------------


@pytest.mark.parametrize("char", HIDDEN, ids=lambda c: f"U+{ord(c):04X}")
def test_every_hidden_character_is_escaped_and_removed_from_names(char: str) -> None:
    text = f"a{char}b"
    shown = for_terminal(text)
    assert _raw(shown) == [] and shown.startswith("a\\") and shown.endswith("b")
    assert len(shown) > 3
    assert _raw(json_for_terminal({text: [text]})) == []
    assert json.loads(json_for_terminal({text: [text]})) == {text: [text]}
    assert clean_name(text) == "ab"


@pytest.mark.parametrize(
    ("char", "escape"),
    [
        ("\x1b", "\\x1b"),
        ("\x07", "\\x07"),
        ("\x00", "\\x00"),
        ("\r", "\\r"),
        ("\n", "\\n"),
        ("\t", "\\t"),
        ("\x7f", "\\x7f"),
        ("\x9b", "\\x9b"),
        ("\x85", "\\x85"),
        ("\u202e", "\\u202e"),
        ("\u2066", "\\u2066"),
        ("\u200b", "\\u200b"),
        ("\ufeff", "\\ufeff"),
        ("\U000e0041", "\\U000e0041"),
    ],
)
def test_escapes_name_the_code_point(char: str, escape: str) -> None:
    assert for_terminal(f"x{char}y") == f"x{escape}y"


def test_multiline_keeps_line_feeds_and_tabs_only() -> None:
    text = "one\n\ttwo\r\nthree\x0bfour\x0cfive\u2028six\x85seven"
    assert for_terminal(text, multiline=True) == (
        "one\n\ttwo\\r\nthree\\x0bfour\\x0cfive\\u2028six\\x85seven"
    )
    assert "\n" not in for_terminal(text)


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_in_any_script_is_unchanged(text: str) -> None:
    assert for_terminal(text) == text
    assert for_terminal(text, multiline=True) == text
    assert clean_name(text) == text
    assert json_for_terminal(text) == json.dumps(text, ensure_ascii=False)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"ad{ZWJ}min", "ad\\u200dmin"),  # between ASCII letters: a disguise
        (f"{ZWJ}می", "\\u200dمی"),  # at the edge
        ("می\u200c", "می\\u200c"),
        ("می\u200c\u200cخ", "می\\u200c\\u200cخ"),  # doubled
        (f"می{RLO}\u200cخ", "می\\u202e\\u200cخ"),  # next to a control
        ("می\u200bخ", "می\\u200bخ"),  # zero-width space is never writing
    ],
)
def test_joiners_are_kept_only_inside_writing(text: str, shown: str) -> None:
    assert for_terminal(text) == shown


def test_json_round_trips_and_escapes_keys_values_and_astral_characters() -> None:
    data: dict[str, Any] = {
        f"field{RLO}{OSC_TITLE}": [ATTACK, {"n": 1, "x": None, "t": "\U000e0041👍"}],
        "plain": "می‌خواهم 👨‍👩‍👧",
    }
    out = json_for_terminal(data)
    assert _raw(out.replace(data["plain"], "")) == []  # its joiners are part of the writing
    assert json.loads(out) == data
    assert "\\u202e" in out and "\\u009b31m" in out and "\\udb40\\udc41👍" in out
    assert "می‌خواهم 👨‍👩‍👧" in out
    assert out.startswith('{\n  "field')  # indented like json.dumps(indent=2)


def test_clean_name_removes_what_hides_an_extension() -> None:
    assert clean_name(f"photo{RLO}gpj.exe") == "photogpj.exe"
    assert clean_name("in\u2066voice\u2069\u200b.pdf\u00ad") == "invoice.pdf"
    assert clean_name(f"a\x1b]0;x\x07\x9bb{ZWJ}.jpg") == "a]0;xb.jpg"
    taken: set[str] = set()
    assert desk_files.safe_name(f"..\\..{RLO}/photo{RLO}gpj.exe", taken, "f") == "photogpj.exe"
    assert desk_files.safe_name(f"photo{ZWJ}gpj.exe", taken, "f") == "photogpj (2).exe"
    assert desk_files.safe_name(f"{RLO}\u200b", taken, "file-1") == "file-1"


def test_cli_errors_escape_their_message() -> None:
    assert CliError(f"no case {RLO}{OSC_TITLE}").format_message() == (
        "no case \\u202e\\x1b]0;pwned\\x07"
    )


# --- the attack, through the real portal and desk ----------------------------------


def _sealed_report(
    client: FlaskClient,
    org: Organization,
    fields: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a hostile reporter's own script posts: fields the portal cannot read.

    browser_style_request seals a description only; its fields are swapped for
    ``fields`` on their way into the envelope."""
    real: Callable[..., bytes] = reports.plaintext
    placeholder = {"what_happened": "HOSTILE FIELDS"}

    def hostile(*args: Any, **kwargs: Any) -> bytes:
        return real(*(fields if arg == placeholder else arg for arg in args), **kwargs)

    monkeypatch.setattr("tests.harness.sealing.plaintext", hostile)
    _, request = sealing.browser_style_request(org, placeholder["what_happened"])
    resp = api_post(client, "/api/reports", request)
    assert resp.status_code == 201, resp.get_json()


def _no_js_report(client: FlaskClient, fields: dict[str, str], files: list[Any]) -> None:
    data: dict[str, Any] = {"csrf_token": csrf_token(client), **fields, "files": files}
    resp = client.post(
        "/report", data=data, content_type="multipart/form-data", follow_redirects=True
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]


def _desk(home: Path, *args: str) -> Result:
    return CliRunner().invoke(
        main, ["desk", *args, "--home", str(home)], env={"PORTAL_DESK_PASSPHRASE": PASSPHRASE}
    )


def _fields_by_case(store: DeskStore, keys: DeskKeys) -> dict[str, dict[str, str]]:
    return {
        row.case: cases.show_case(store, keys, row.case).items[0].content["fields"]
        for row in cases.list_cases(store)
    }


def test_hostile_reports_reach_the_desk_terminal_only_as_visible_escapes(
    app: Flask,
    client: FlaskClient,
    org: Organization,
    desk_keys: DeskKeys,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    evil_name = f"who{OSC_TITLE}{RLO}_else"
    fields = {"what_happened": f"first line\n{ATTACK}\n\tlast line", evil_name: ATTACK}
    _sealed_report(client, org, fields, monkeypatch)
    _no_js_report(client, {"what_happened": ATTACK, "where": f"{C1_CSI}{RLO}"}, [])
    store = DeskStore(home)
    to_desk(app, store, desk_keys, tmp_path)
    sent = _fields_by_case(store, desk_keys)
    assert len(sent) == 2
    assert fields in sent.values()  # the hostile fields arrived as sent

    listing = _desk(home, "cases")
    assert listing.exit_code == 0, listing.output
    assert _raw(listing.output) == [] and all(case in listing.output for case in sent)

    for case, sealed in sent.items():
        text = _desk(home, "show", case[:10])
        assert text.exit_code == 0, text.output
        out = text.output
        assert _raw(out) == []
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and RLO not in out
        assert "\\u202egpj.exe" in out
        # A C1 control sealed by a hostile client shows as an escape; the no-JS form
        # drops it on arrival, as it drops every control character but line breaks.
        assert ("\\x9b31m" in out) == (evil_name in sealed)
        as_json = _desk(home, "show", case, "--json")
        assert as_json.exit_code == 0, as_json.output
        assert _raw(as_json.output) == []
        assert json.loads(as_json.output)["items"][0]["content"]["fields"] == sealed
        if evil_name in sealed:
            assert all(v in out for v in VISIBLE)
            # A multi-line value keeps its line breaks and tab, each line indented.
            assert "What happened?:\n  first line\n  start\\x1b[2J" in out
            assert "\n  \tlast line" in out
            assert 'Field "who\\u001b]0;pwned\\u0007\\u202e_else":\n  start\\x1b[2J' in out


def test_a_file_named_with_a_bidi_override_is_saved_and_shown_cleaned(
    app: Flask, client: FlaskClient, desk_keys: DeskKeys, home: Path, tmp_path: Path
) -> None:
    exe = b"MZ" + os.urandom(2000)
    other = os.urandom(1000)
    _no_js_report(
        client,
        {"what_happened": "see the photo"},
        [(io.BytesIO(exe), f"photo{RLO}gpj.exe"), (io.BytesIO(other), f"{C1_CSI}x{ZWJ}.jpg")],
    )
    store = DeskStore(home)
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    names = [f["name"] for f in cases.show_case(store, desk_keys, case).items[0].files]
    assert names == [f"photo{RLO}gpj.exe", f"{C1_CSI}x{ZWJ}.jpg"]

    out = tmp_path / "saved"
    result = _desk(home, "save", case, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["31mx.jpg", "SHA256SUMS", "photogpj.exe"]
    assert (out / "photogpj.exe").read_bytes() == exe
    assert _raw(result.output) == [] and "photogpj.exe" in result.output

    desk = create_desk_app(home, token="t", idle_seconds=600)
    c = desk.test_client()
    c.get("/?token=t")
    token = CSRF.search(c.get("/").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    c.post("/unlock", data={"csrf_token": token, "passphrase": PASSPHRASE})
    page = c.get(f"/cases/{case}").get_data(as_text=True)
    assert ">photogpj.exe</strong>" in page and ">31mx.jpg</strong>" in page
    assert RLO not in page and "\x9b" not in page and ZWJ not in page
    upload = desk_files.files_of(cases.show_case(store, desk_keys, case).items[0].content, case)
    resp = c.get(f"/cases/{case}/files/{upload[0].upload}")
    assert resp.data == exe
    disposition = resp.headers["Content-Disposition"]
    expected = f"{case_name(case)}_item1_photogpj.exe"  # the case and item make it unique
    assert disposition == f"attachment; filename*=UTF-8''{quote(expected)}"


def test_damaged_and_missing_file_names_are_escaped_on_stderr(
    app: Flask, client: FlaskClient, desk_keys: DeskKeys, home: Path, tmp_path: Path
) -> None:
    _no_js_report(
        client,
        {"what_happened": "two files"},
        [(io.BytesIO(os.urandom(500)), f"a{RLO}gpj.exe"), (io.BytesIO(b"x" * 500), "b\x9b.txt")],
    )
    store = DeskStore(home)
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    damaged, missing = desk_files.files_of(
        cases.show_case(store, desk_keys, case).items[0].content, case
    )
    path = store.blobs.path(str(desk_files.locate(store, damaged)))
    path.write_bytes(path.read_bytes()[:-3])
    store.blobs.path(str(desk_files.locate(store, missing))).unlink()
    result = _desk(home, "save", case, "--out", str(tmp_path / "saved"))
    assert result.exit_code != 0
    assert "DAMAGED   a\\u202egpj.exe: not written" in result.stderr
    assert "missing   b\\x9b.txt: not imported yet" in result.stderr
    assert _raw(result.output) == []
