"""Questionnaires the organization writes: checked at start, served without
JavaScript, sealed with their digest, and laid out on the desk by that very version."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.common.languages import LANGUAGES
from portal.common.questionnaire import (
    DEFAULT_DIR,
    QuestionnaireError,
    load_folder,
    parse,
    parse_canonical,
)
from portal.desk import casefile, cases, layout, tables
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskStore, utc_today
from portal.protocol.bundles import Item, Manifest, write_bundle
from portal.server.app import create_app
from portal.server.config import Config
from portal.server.intake import lead_in
from tests.harness.loop import CODE_ON_PAGE, to_desk
from tests.harness.web import csrf_token

EXAMPLE = Path(__file__).parent.parent / "docs/examples/questionnaires/detention.yaml"
HOSTILE = (
    '<script>alert("x")</script><img src=x onerror=alert(1)><a href="javascript:alert(2)">j</a>'
)


def _folder(tmp_path: Path, *files: tuple[str, str]) -> Path:
    """A branding folder whose questionnaires/ holds ``files`` (name, text)."""
    branding = tmp_path / "branding"
    (branding / "questionnaires").mkdir(parents=True, exist_ok=True)
    for name, text in files:
        (branding / "questionnaires" / name).write_text(text, encoding="utf-8")
    return branding


@pytest.fixture
def detention_app(config: Config, tmp_path: Path) -> Flask:
    """A portal serving the example questionnaire and the shipped default."""
    branding = _folder(
        tmp_path,
        ("detention.yaml", EXAMPLE.read_text("utf-8")),
        ("report.json", (DEFAULT_DIR / "report.json").read_text("utf-8")),
    )
    return create_app(replace(config, branding_dir=branding))


@pytest.fixture
def store(home: Path) -> DeskStore:
    return DeskStore(home)


def _send(client: FlaskClient, path: str, form: dict[str, object]) -> tuple[int, str]:
    resp = client.post(
        path,
        data={"csrf_token": csrf_token(client, path), **form},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    return resp.status_code, resp.get_data(as_text=True)


EVERYTHING: dict[str, object] = {
    "account": "MARKER-q1 they came at night",
    "detained_on.year": "۲۰۲۴",  # Persian digits, as a phone's keyboard may type them
    "detained_on.month": "3",
    "detained_on.approx": "1",
    "who": "relative",
    "people": "12",
    "still_held": "yes",
    "place": "Central prison",
    "treatment": ["no_lawyer", "no_care"],
    "may_share": "prefer_not",
}


# ---- definitions ----------------------------------------------------------------


def test_the_default_is_the_form_the_portal_always_had_in_every_language() -> None:
    (default,) = load_folder(None)
    assert (default.id, default.version) == ("report", 1)
    ids = [q.id for q in default.questions]
    assert ids[:5] == ["what_happened", "when", "where", "who_affected", "who_responsible"]
    assert default.files_question is not None
    for q in default.questions:
        assert set(q.label.by_language) == set(LANGUAGES), q.id


def test_the_example_has_every_type_of_question_and_a_condition() -> None:
    q = parse(EXAMPLE.read_bytes())
    kinds = {x.rule.kind for x in q.questions}
    assert kinds == {
        "short_text", "long_text", "single_choice", "multiple_choice",
        "yes_no", "number", "date", "files",
    }  # fmt: skip
    assert any(x.rule.show_if for x in q.questions) and len(q.sections) == 2


BROKEN = {
    "not YAML": ("id: x\nversion: [1\n", "not valid YAML"),
    "an unknown type": (
        "id: x\nversion: 1\ntitle: T\nsections:\n  - questions:\n"
        "      - id: a\n        type: dropdown\n        label: A\n",
        "line 7",
    ),
    "an unknown key": (
        "id: x\nversion: 1\ntitle: T\ncolour: red\nsections:\n  - questions:\n"
        "      - {id: a, type: short_text, label: A}\n",
        "unknown key",
    ),
    "an id used twice": (
        "id: x\nversion: 1\ntitle: T\nsections:\n  - questions:\n"
        "      - {id: a, type: short_text, label: A}\n"
        "      - {id: a, type: long_text, label: B}\n",
        "line 7",
    ),
    "a condition on a later question": (
        "id: x\nversion: 1\ntitle: T\nsections:\n  - questions:\n"
        "      - id: a\n        type: short_text\n        label: A\n"
        '        show_if: {question: b, is: ["yes"]}\n'
        "      - {id: b, type: yes_no, label: B}\n",
        "line 9",
    ),
    "a condition on an answer that does not exist": (
        "id: x\nversion: 1\ntitle: T\nsections:\n  - questions:\n"
        "      - {id: b, type: yes_no, label: B}\n"
        "      - id: a\n        type: short_text\n        label: A\n"
        "        show_if:\n          question: b\n          is:\n            - maybe\n",
        "line 13",
    ),
    "a language the portal does not speak": (
        "id: x\nversion: 1\ntitle:\n  en: T\n  xx: T\nsections:\n"
        "  - questions:\n      - {id: a, type: short_text, label: A}\n",
        "line 5",
    ),
    "no English": (
        "id: x\nversion: 1\ntitle: {fr: T}\nsections:\n  - questions:\n"
        "      - {id: a, type: short_text, label: A}\n",
        "line 3",
    ),
    "two files questions": (
        "id: x\nversion: 1\ntitle: T\nsections:\n  - questions:\n"
        "      - {id: a, type: files, label: A}\n      - {id: b, type: files, label: B}\n",
        "one files question",
    ),
    "options on a text question": (
        "id: x\nversion: 1\ntitle: T\nsections:\n  - questions:\n"
        "      - id: a\n        type: short_text\n        label: A\n"
        "        options: [{id: p, label: P}, {id: q, label: Q}]\n",
        "line 6",
    ),
    "a reserved id": (
        "id: x\nversion: 1\ntitle: T\nsections:\n  - questions:\n"
        "      - {id: csrf_token, type: short_text, label: A}\n",
        "line 6",
    ),
    "a key given twice": ("id: x\nid: y\nversion: 1\n", "line 2"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_definition_is_refused_with_its_line(name: str) -> None:
    text, expected = BROKEN[name]
    with pytest.raises(QuestionnaireError) as refused:
        parse(text.encode())
    assert expected in str(refused.value), str(refused.value)


def test_the_portal_refuses_to_start_on_a_bad_definition_naming_file_and_line(
    config: Config, tmp_path: Path
) -> None:
    text, _ = BROKEN["an unknown type"]
    branding = _folder(tmp_path, ("good.yaml", EXAMPLE.read_text("utf-8")), ("bad.yaml", text))
    with pytest.raises(QuestionnaireError, match=r"bad\.yaml, line 7: .*type"):
        create_app(replace(config, branding_dir=branding))


def test_yes_and_no_stay_words_not_booleans() -> None:
    """YAML 1.1 would read an unquoted yes as true; a condition on "yes" must hold."""
    q = parse(
        b"id: x\nversion: 1\ntitle: T\nsections:\n  - questions:\n"
        b"      - {id: b, type: yes_no, label: B}\n"
        b"      - {id: a, type: short_text, label: A, show_if: {question: b, is: [yes]}}\n"
    )
    assert q.questions[1].rule.show_if is not None
    assert q.questions[1].rule.show_if.values == ("yes",)


def test_a_definition_travels_only_in_canonical_form() -> None:
    q = parse(EXAMPLE.read_bytes())
    assert parse_canonical(q.canonical).digest == q.digest
    pretty = json.dumps(json.loads(q.canonical), indent=1).encode()
    with pytest.raises(QuestionnaireError, match="canonical"):
        parse_canonical(pretty)


# ---- the reporter's pages, without JavaScript --------------------------------------


def test_several_questionnaires_are_chosen_on_report(detention_app: Flask) -> None:
    client = detention_app.test_client()
    page = client.get("/report").get_data(as_text=True)
    assert 'href="/report/report"' in page and 'href="/report/detention"' in page
    assert page.index("/report/report") < page.index("/report/detention")  # by order
    assert client.get("/report/nothing-here").status_code == 404


def test_the_form_is_accessible_without_javascript(detention_app: Flask) -> None:
    page = detention_app.test_client().get("/report/detention").get_data(as_text=True)
    # Choices, yes/no and dates are fieldsets with a legend; text has a label.
    for qid in ("detained_on", "who", "still_held", "treatment"):
        box = page[page.index(f'id="question-{qid}"') :]
        assert box.index("<fieldset") < box.index("<legend") < box.index("</fieldset>")
    assert re.search(r'<label for="account"[^>]*>', page)
    # Conditional questions say when to answer them, and are tied to that note.
    note = re.search(r'<p class="hint condition" id="place-condition">([^<]*)</p>', page)
    assert note and "“Yes”" in note.group(1) and "Are they still held?" in note.group(1)
    assert re.search(r'<input[^>]*id="place"[^>]*aria-describedby="place-condition', page)


def test_every_type_is_sealed_without_javascript_and_laid_out_on_the_desk(
    detention_app: Flask, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    client = detention_app.test_client()
    status, page = _send(
        client, "/report/detention", {**EVERYTHING, "files": [(io.BytesIO(b"%PDF-1"), "a.pdf")]}
    )
    assert status == 200 and CODE_ON_PAGE.search(page)
    to_desk(detention_app, store, desk_keys, tmp_path)
    (row,) = cases.list_cases(store)
    item = cases.show_case(store, desk_keys, row.case).items[0]
    sealed = item.content
    assert (sealed["form"], sealed["form_version"]) == ("detention", 1)
    assert sealed["form_digest"] == parse(EXAMPLE.read_bytes()).digest
    assert sealed["fields"] == {
        "account": "MARKER-q1 they came at night",
        "detained_on": "~2024-03",
        "who": "relative",
        "people": "12",
        "still_held": "yes",
        "place": "Central prison",
        "treatment": "no_lawyer no_care",
        "may_share": "prefer_not",
    }
    assert len(item.files) == 1
    laid = layout.lay_out(sealed, layout.known(store))
    shown = {r.label: r.value for r in laid.rows}
    assert shown["Who was detained?"] == "A relative"
    assert shown["When did the detention start?"] == "approximately 2024-03"
    assert shown["What do you know about how they are treated?"] == (
        "No access to a lawyer; No medical care"
    )
    assert shown["May we share your report with partner legal-aid organizations?"] == (
        "Prefer not to say"
    )
    assert laid.title == "Report a detention" and laid.rows[0].section == "What happened"
    # French pages of the desk show the French words the definition has.
    french = layout.lay_out(sealed, layout.known(store), "fr")
    assert {r.label: r.value for r in french.rows}["Qui a été détenu ?"] == "Un proche"


def test_answers_behind_an_unmet_condition_are_not_sealed(
    detention_app: Flask, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    client = detention_app.test_client()
    form = {**EVERYTHING, "still_held": "no"}
    assert _send(client, "/report/detention", form)[0] == 200
    to_desk(detention_app, store, desk_keys, tmp_path)
    item = cases.show_case(store, desk_keys, cases.list_cases(store)[0].case).items[0]
    assert "place" not in item.content["fields"] and "treatment" not in item.content["fields"]


def test_problems_are_shown_on_their_questions_and_nothing_is_stored(
    detention_app: Flask, tmp_path: Path
) -> None:
    client = detention_app.test_client()
    form = {**EVERYTHING, "account": "  ", "people": "twelve", "detained_on.day": "31",
            "detained_on.month": "2"}  # fmt: skip
    status, page = _send(client, "/report/detention", form)
    assert status == 400
    summary = page[page.index('id="error-summary"') :]
    for target in ("#account", "#people", "#detained_on-year"):
        assert f'href="{target}"' in summary
    said = re.sub(r"<[^>]+>", "", summary[: summary.index("</div>")])
    assert "? " in said and "?:" not in said  # "What happened? ...", not "What happened?: ..."
    assert re.search(r'<textarea[^>]*id="account"[^>]*aria-describedby="[^"]*account-error', page)
    assert 'id="account-error"' in page and 'aria-invalid="true"' in page
    # What was typed stays on the page, to correct and send again.
    assert 'value="Central prison"' in page and 'value="twelve"' in page
    assert re.search(r'value="no_care" checked', page)
    data = Path(detention_app.extensions["portal"].config.data_dir)
    assert not list((data / "blobs").rglob("*.json"))  # no envelope was stored


def test_a_forged_choice_is_refused(detention_app: Flask) -> None:
    client = detention_app.test_client()
    status, page = _send(client, "/report/detention", {**EVERYTHING, "who": "<b>me</b>"})
    assert status == 400 and "Please choose one of the answers shown." in page


# ---- hostile definitions -----------------------------------------------------------


class _Active(HTMLParser):
    """Markup that would run or load something: inline script, images, on*
    handlers, javascript: links. The portal's own scripts are src= only."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        if tag == "img":
            self.found.append("img")
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"{tag} {name}={value}")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append(f"inline script {data[:40]}")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def _active_markup(page: str) -> list[str]:
    parser = _Active()
    parser.feed(page)
    return parser.found


def _hostile_definition() -> str:
    h = json.dumps(HOSTILE)
    return f"""
id: hostile
version: 1
title: {h}
intro: {h}
sections:
  - title: {h}
    intro: {h}
    questions:
      - id: a
        type: yes_no
        label: {h}
        help: {h}
      - id: b
        type: single_choice
        label: {h}
        show_if: {{question: a, is: ["yes"]}}
        options:
          - {{id: o, label: {h}}}
          - {{id: p, label: {h}}}
"""


def test_script_in_every_text_of_a_definition_is_neutralised(
    config: Config, tmp_path: Path, store: DeskStore, desk_keys: DeskKeys
) -> None:
    branding = _folder(tmp_path, ("hostile.yaml", _hostile_definition()))
    app = create_app(replace(config, branding_dir=branding))
    client = app.test_client()
    for path in ("/report", "/report/hostile"):
        assert _active_markup(client.get(path).get_data(as_text=True)) == []
    assert _send(client, "/report/hostile", {"a": "yes", "b": "o"})[0] == 200
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    laid = layout.lay_out(cases.show_case(store, desk_keys, case).items[0].content,
                          layout.known(store))  # fmt: skip
    assert all(r.label == HOSTILE for r in laid.rows)  # plain text, escaped where shown
    out = tmp_path / "casefile"
    casefile.export_case(store, desk_keys, case, out)
    assert _active_markup((out / "case.html").read_text("utf-8")) == []


# ---- versions --------------------------------------------------------------------


def test_a_changed_questionnaire_never_garbles_an_old_report(
    config: Config, tmp_path: Path, store: DeskStore, desk_keys: DeskKeys
) -> None:
    v1 = EXAMPLE.read_text("utf-8")
    branding = _folder(tmp_path, ("detention.yaml", v1))
    app1 = create_app(replace(config, branding_dir=branding))
    assert _send(app1.test_client(), "/report/detention", {"account": "old", "who": "me"})[0] == 200
    # The organization rewords an option and raises the version; the portal restarts.
    v2 = v1.replace("version: 1", "version: 2").replace('en: "Me"', 'en: "Myself"')
    shutil.rmtree(branding)
    branding = _folder(tmp_path, ("detention.yaml", v2))
    app2 = create_app(replace(config, branding_dir=branding))
    assert _send(app2.test_client(), "/report/detention", {"account": "new", "who": "me"})[0] == 200
    to_desk(app2, store, desk_keys, tmp_path)  # one inbox carries both definitions
    by_text = {}
    for row in cases.list_cases(store):
        content = cases.show_case(store, desk_keys, row.case).items[0].content
        laid = layout.lay_out(content, layout.known(store))
        by_text[content["fields"]["account"]] = (laid.form, {r.field: r.value for r in laid.rows})
    assert by_text["old"] == ("detention v1", {"account": "old", "who": "Me"})
    assert by_text["new"] == ("detention v2", {"account": "new", "who": "Myself"})
    out = tmp_path / "t.csv"
    tables.export_table(store, desk_keys, out)
    table = list(csv.reader(io.StringIO(out.read_text("utf-8-sig"))))
    header, body = table[0], table[1:]
    who = header.index("Who was detained?")
    assert sorted(r[who] for r in body) == ["Me", "Myself"]
    forms = sorted(r[header.index("questionnaire")] for r in body)
    assert forms == ["detention v1", "detention v2"]


def test_a_definition_that_is_not_what_its_name_says_is_refused(
    detention_app: Flask, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    """A hostile relay relabels: it sends other words under a report's digest."""
    other = parse(EXAMPLE.read_bytes().replace(b"Me", b"Nobody"))
    wanted = parse(EXAMPLE.read_bytes()).digest
    assert layout.keep(store, wanted, other.canonical, utc_today()) is not None
    assert wanted not in layout.known(store)


def test_a_report_whose_definition_never_arrived_still_shows_every_answer() -> None:
    content = {"kind": "report", "form": "gone", "form_version": 3, "form_digest": "ab" * 32,
               "fields": {"q1": "an answer", "q2": "another"}}  # fmt: skip
    laid = layout.lay_out(content, {})
    assert not laid.known
    assert [(r.field, r.value, r.named) for r in laid.rows] == [
        ("q1", "an answer", False), ("q2", "another", False),
    ]  # fmt: skip


def test_a_report_from_before_questionnaires_is_laid_out_by_the_default() -> None:
    content = {"kind": "report", "form": "report", "form_version": 1,
               "fields": {"what_happened": "x", "may_contact": "yes", "when": ""}}  # fmt: skip
    laid = layout.lay_out(content, {})
    assert [(r.label, r.value) for r in laid.rows] == [
        ("What happened?", "x"), ("May we write back to you through this portal?", "Yes"),
    ]  # fmt: skip


# ---- hostile definitions in transit --------------------------------------------------


def _inbox_of(path: Path, org_kid: str, definitions: list[bytes]) -> Path:
    """An inbox holding only questionnaire items: what anyone carrying the unsigned
    bundle can make."""
    items = tuple(
        Item(id=hashlib.sha256(d).hexdigest(), kind="questionnaire",
             name=f"questionnaires/{hashlib.sha256(d).hexdigest()}.json",
             size=len(d), sha256=hashlib.sha256(d).hexdigest())
        for d in definitions
    )  # fmt: skip
    by_id = {i.id: d for i, d in zip(items, definitions, strict=True)}
    manifest = Manifest(type="inbox", org=org_kid, created="2026-11-28", items=items,
                        extra={"more": False})  # fmt: skip
    write_bundle(path, manifest, lambda item: io.BytesIO(by_id[item.id]))
    return path


HOSTILE_IN_TRANSIT = {
    "an alias bomb": b'{"a":[' + b"[" * 30 + b"]" * 30 + b"]}",
    "deep nesting": b"[" * 100_000,
    "a lone surrogate": b'{"id":"\\ud800"}',
    "YAML, not JSON": b"id: x\nversion: 1\n",
    "pretty, not canonical": json.dumps(
        json.loads(parse(EXAMPLE.read_bytes()).canonical), indent=1
    ).encode(),
    "a duplicate key": b'{"id":"a","id":"b"}',
}


def test_hostile_definitions_in_an_inbox_are_refused_alone(
    store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    good = parse(EXAMPLE.read_bytes()).canonical
    inbox = _inbox_of(tmp_path / "i.tar", desk_keys.organization.encrypt[0].kid,
                      [*HOSTILE_IN_TRANSIT.values(), good])  # fmt: skip
    result = cases.import_inbox(store, desk_keys, inbox)
    refusals = [n for n in result.notes if "questionnaire definition was refused" in n]
    assert len(refusals) == len(HOSTILE_IN_TRANSIT)
    assert list(layout.known(store)) == [hashlib.sha256(good).hexdigest()]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a: &x 1\nb: *x\n", "anchors and aliases"),
        ("[" * 5000, "nested more than"),
        (
            "id: x\nversion: 1\ntitle: T\nsections:\n  - questions:\n"
            "      - {id: a, type: yes_no, label: A}\n"
            "      - {id: b, type: files, label: B, show_if: {question: a, is: [yes]}}\n",
            "line 7",
        ),
        ("id: x\nversion: 1\ntitle: T\nsections:\n  - questions:\n"
         "      - {id: reset, type: short_text, label: A}\n", "line 6"),
        ("id: x\nversion: 1\ntitle: T\nsections:\n  - questions:\n"
         "      - {id: constructor, type: short_text, label: A}\n", "line 6"),
    ],
)  # fmt: skip
def test_definitions_the_browser_or_desk_could_not_use_are_refused_at_start(
    text: str, why: str
) -> None:
    with pytest.raises(QuestionnaireError, match=why):
        parse(text.encode())


def test_digits_of_other_kinds_are_no_date_and_no_server_error(detention_app: Flask) -> None:
    client = detention_app.test_client()
    form = {**EVERYTHING, "detained_on.year": "20²4"}
    status, page = _send(client, "/report/detention", form)
    assert status == 400 and 'href="#detained_on-year"' in page


@pytest.mark.parametrize(
    ("label", "lead"),
    [
        ("Where were you held", "Where were you held:"),
        ("What happened?", "What happened?"),
        ("ماذا حدث؟", "ماذا حدث؟"),
        ("发生了什么？", "发生了什么？"),
        ("ဘာဖြစ်ခဲ့သလဲ။", "ဘာဖြစ်ခဲ့သလဲ။"),
        ("Date (optional)", "Date (optional):"),
    ],
)
def test_a_question_leads_into_its_problem_without_doubled_punctuation(
    label: str, lead: str
) -> None:
    assert lead_in(label) == lead
