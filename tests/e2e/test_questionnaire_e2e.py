"""An organization's own questionnaire in real browsers, at every Tor Browser level.

A portal serving the example questionnaire (every type of question, a condition)
beside the default: filled in and sent from Chromium (JavaScript, no JIT, none)
and Firefox ESR (Standard, Safer, Safest), read on a real desk and exported as a
table; axe on its pages in every language the portal speaks; and Burmese and
Persian drawn with real glyphs, from the fonts Tor Browser ships.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from portal.common.languages import LANGUAGES
from portal.common.questionnaire import DEFAULT_DIR, parse
from portal.protocol import codes
from tests.harness.a11y import axe_violations, choose_language
from tests.harness.browsers import chromium, next_page
from tests.harness.drivers import EVERY_LEVEL, mode_of
from tests.harness.drivers import browser as open_browser
from tests.harness.firefox import AnyDriver, wait
from tests.harness.live import LivePortal, fresh_desk_copy, live_portal
from tests.harness.web import PASSPHRASE

EXAMPLE = Path(__file__).parents[2] / "docs/examples/questionnaires/detention.yaml"
SEAL_TIMEOUT = {"js": 60, "jitless": 120, "nojs": 60}
# Fonts Tor Browser ships for these scripts, named in static/css/portal.css.
SHIPPED_FONTS = {"my": {"Noto Sans Myanmar"}, "fa": {"Noto Naskh Arabic", "Noto Sans Arabic"}}


# A questionnaire that asks for no files: the page has no file picker at all.
SHORT = """
id: short
version: 1
order: 20
title: A short witness statement
sections:
  - questions:
      - {id: saw, type: long_text, label: What did you see?, required: true}
      - {id: again, type: yes_no, label: Would you say it again to a lawyer?}
"""


@pytest.fixture(scope="module")
def live_q(tmp_path_factory: pytest.TempPathFactory, desk_home: Path) -> Iterator[LivePortal]:
    base = tmp_path_factory.mktemp("questionnaires")
    folder = base / "branding" / "questionnaires"
    folder.mkdir(parents=True)
    shutil.copy(EXAMPLE, folder / "detention.yaml")
    shutil.copy(DEFAULT_DIR / "report.json", folder / "report.json")
    (folder / "short.yaml").write_text(SHORT, encoding="utf-8")
    env = {"PORTAL_BRANDING": str(base / "branding")}
    with live_portal(base / "portal", desk_home / "organization.json", extra_env=env) as portal:
        yield portal


def _page_lang(drv: AnyDriver) -> str:
    return str(drv.find_element(By.TAG_NAME, "html").get_attribute("lang"))


def _click(drv: AnyDriver, selector: str) -> None:
    drv.find_element(By.CSS_SELECTOR, selector).click()


def _type(drv: AnyDriver, element_id: str, text: str) -> None:
    drv.find_element(By.ID, element_id).send_keys(text)


def _check_errors_with_javascript(drv: AnyDriver) -> None:
    """Nothing answered: the page says what is missing before anything is sealed."""
    _click(drv, "#report-form button[type=submit]")
    box = wait(drv, 30).until(ec.visibility_of_element_located((By.ID, "js-error")))
    assert drv.find_element(By.CSS_SELECTOR, "#js-error a[href='#account']")
    assert drv.find_element(By.ID, "account").get_attribute("aria-invalid") == "true"
    described = drv.find_element(By.ID, "account").get_attribute("aria-describedby") or ""
    assert "account-error" in described.split()
    assert drv.find_element(By.ID, "account-error").is_displayed()
    assert "Please answer this question." in box.text
    # Each link says the question as the server's summary does ("… happened? Please
    # answer …", never "?:"), from the lead-in the server gave the page.
    lead = drv.find_element(By.ID, "question-account").get_attribute("data-lead-in")
    link = drv.find_element(By.CSS_SELECTOR, "#js-error a[href='#account']").text
    assert lead and link.startswith(lead + " ") and "?:" not in box.text


def _fill(drv: AnyDriver, mode: str, marker: str) -> None:
    _type(drv, "account", f"{marker} they came at night")
    _type(drv, "detained_on-year", "2024")
    _click(drv, "#detained_on-month option[value='3']")
    _click(drv, "#detained_on-approx")
    _click(drv, "#who-relative")
    _type(drv, "people", "12")
    place = drv.find_element(By.ID, "question-place")
    if mode == "nojs":  # every question shown, the condition said in words
        assert place.is_displayed()
        assert "“Yes”" in drv.find_element(By.ID, "place-condition").text
    else:  # the question appears once its condition is met
        assert not place.is_displayed()
        assert not drv.find_elements(By.ID, "place-condition")
    _click(drv, "#still_held-yes")
    wait(drv, 15).until(lambda d: d.find_element(By.ID, "question-place").is_displayed())
    _type(drv, "place", "Central prison")
    _click(drv, "#treatment-no_lawyer")
    _click(drv, "#treatment-no_care")
    _click(drv, "#may_share-prefer_not")


def _desk_reads(live: LivePortal, desk_home: Path, tmp: Path, marker: str) -> tuple[dict, list]:  # type: ignore[type-arg]
    bundle = tmp / "inbox.tar"
    assert live.command("export-inbox", str(bundle)).returncode == 0
    home = fresh_desk_copy(desk_home, tmp / "desk")
    env = {"PORTAL_DESK_PASSPHRASE": PASSPHRASE}
    out = live.command("desk", "import", "--home", str(home), str(bundle), env=env)
    assert out.returncode == 0, out.stderr
    table = tmp / "cases.csv"
    out = live.command("desk", "export-table", "--out", str(table), "--home", str(home), env=env)
    assert out.returncode == 0, out.stderr
    rows = list(csv.reader(io.StringIO(table.read_text("utf-8-sig"))))
    _, shown = live.desk_case(home, marker, env)
    item = shown["items"][0]
    assert item["content"]["fields"]["account"].startswith(marker)
    return item, rows


@pytest.mark.parametrize(("browser", "level"), EVERY_LEVEL)
def test_a_questionnaire_of_every_type_reaches_the_desk(
    browser: str, level: str, live_q: LivePortal, desk_home: Path, tmp_path: Path
) -> None:
    mode = mode_of(browser, level)
    marker = f"MARKER-q-{browser}-{level}"
    with open_browser(browser, level) as drv:
        drv.get(live_q.url + "/report")
        _click(drv, "a[href='/report/detention']")
        wait(drv, 30).until(lambda d: d.find_elements(By.ID, "account"))
        if mode != "nojs":
            wait(drv, 30).until(
                lambda d: d.find_element(By.ID, "seal-notice-browser").is_displayed()
            )
            _check_errors_with_javascript(drv)
        _fill(drv, mode, marker)
        _click(drv, "#report-form button[type=submit]")
        code_el = wait(drv, SEAL_TIMEOUT[mode]).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-code]"))
        )
        wait(drv, 30).until(lambda d: len(code_el.text.replace(" ", "")) == 24)
        codes.normalise(code_el.text)
    item, table = _desk_reads(live_q, desk_home, tmp_path, marker)
    assert item["sealed_by"] == ("server" if mode == "nojs" else "browser")
    content = item["content"]
    assert (content["form"], content["form_version"]) == ("detention", 1)
    assert content["form_digest"] == parse(EXAMPLE.read_bytes()).digest
    assert content["fields"] == {
        "account": f"{marker} they came at night",
        "detained_on": "~2024-03",
        "who": "relative",
        "people": "12",
        "still_held": "yes",
        "place": "Central prison",
        "treatment": "no_lawyer no_care",
        "may_share": "prefer_not",
    }
    header, *body = table
    (row,) = [r for r in body if r[header.index("What happened?")].startswith(marker)]
    assert row[header.index("Who was detained?")] == "A relative"
    assert row[header.index("When did the detention start?")] == ("approximately 2024-03")


def _audit(drv: webdriver.Chrome, name: str, found: dict[str, list[str]]) -> None:
    for v in axe_violations(drv):
        found.setdefault(name, []).append(f"{v['id']} ({v['help']}): {v['nodes'][:2]}")


@pytest.mark.parametrize("mode", ["js", "scriptless"])
def test_axe_finds_nothing_on_the_questionnaire_pages_in_any_language(
    live_q: LivePortal, mode: str
) -> None:
    found: dict[str, list[str]] = {}
    with chromium(mode) as drv:
        for lang in LANGUAGES:
            choose_language(drv, live_q, lang)
            drv.get(live_q.url + "/report")
            _audit(drv, f"{lang} choice", found)
            drv.get(live_q.url + "/report/detention")
            _audit(drv, f"{lang} form", found)
            if mode == "js":
                wait(drv, 30).until(
                    lambda d: d.find_element(By.ID, "seal-notice-browser").is_displayed()
                )
                _click(drv, "#still_held-yes")
                _click(drv, "#report-form button[type=submit]")
                wait(drv, 30).until(lambda d: d.find_element(By.ID, "js-error").is_displayed())
            else:
                _type(drv, "people", "many")
                next_page(drv, lambda: _click(drv, "#report-form button[type=submit]"))
                assert drv.find_elements(By.ID, "error-summary")
            _audit(drv, f"{lang} form with problems", found)
    assert found == {}, json.dumps(found, indent=1, ensure_ascii=False)


GLYPHS = """
const el = document.querySelector(arguments[0]);
const letters = [...el.textContent.trim()].filter((c) => /\\p{L}|\\p{M}/u.test(c));
const text = letters.slice(0, 24).join('');
const font = getComputedStyle(el).font;
const draw = (s) => {
  const c = document.createElement('canvas');
  c.width = 1200; c.height = 80;
  const ctx = c.getContext('2d');
  ctx.font = font; ctx.fillStyle = '#000'; ctx.fillText(s, 4, 56);
  return [ctx.measureText(s).width, c.toDataURL()];
};
const [width, image] = draw(text);
// The same number of code points no font has: what missing glyphs look like.
const [tofuWidth, tofu] = draw('\\u{10FFFD}'.repeat([...text].length));
const widths = new Set([...text].map((ch) => Math.round(draw(ch)[0] * 10)));
return {text, width, tofuWidth, same: image === tofu, distinct: widths.size};
"""


@pytest.mark.parametrize("browser", ["chromium", "firefox"])
@pytest.mark.parametrize("lang", ["my", "fa"])
def test_burmese_and_persian_are_drawn_with_real_glyphs(
    live_q: LivePortal, browser: str, lang: str
) -> None:
    level = "js" if browser == "chromium" else "standard"
    with open_browser(browser, level) as drv:
        drv.get(live_q.url + "/")
        _click(drv, f'.language-switch a[lang="{lang}"]')
        wait(drv, 30).until(lambda d: _page_lang(d) == lang)
        drv.get(live_q.url + "/report/report")
        assert drv.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
        drawn = drv.execute_script(GLYPHS, "h1")
        assert drawn["text"], "the heading has no letters"
        assert not drawn["same"] and drawn["distinct"] >= 3, drawn
        if isinstance(drv, webdriver.Chrome):
            # Which installed font Chromium drew the heading with: one Tor Browser ships.
            drv.execute_cdp_cmd("DOM.enable", {})
            drv.execute_cdp_cmd("CSS.enable", {})
            root = drv.execute_cdp_cmd("DOM.getDocument", {})["root"]["nodeId"]
            node = drv.execute_cdp_cmd("DOM.querySelector", {"nodeId": root, "selector": "h1"})
            fonts = drv.execute_cdp_cmd("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
            used = {f["familyName"] for f in fonts["fonts"] if f["glyphCount"] > 0}
            assert used & SHIPPED_FONTS[lang], used


def test_a_questionnaire_without_files_is_sealed_in_the_browser(
    live_q: LivePortal, desk_home: Path, tmp_path: Path
) -> None:
    with chromium("js") as drv:
        drv.get(live_q.url + "/report/short")
        wait(drv, 30).until(lambda d: d.find_element(By.ID, "seal-notice-browser").is_displayed())
        assert not drv.find_elements(By.ID, "files")
        _type(drv, "saw", "MARKER-short two cars at night")
        _click(drv, "#again-yes")
        _click(drv, "#report-form button[type=submit]")
        code_el = wait(drv, 60).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-code]"))
        )
        wait(drv, 30).until(lambda d: len(code_el.text.replace(" ", "")) == 24)
    bundle = tmp_path / "inbox.tar"
    assert live_q.command("export-inbox", str(bundle)).returncode == 0
    home = fresh_desk_copy(desk_home, tmp_path / "desk")
    env = {"PORTAL_DESK_PASSPHRASE": PASSPHRASE}
    assert (
        live_q.command("desk", "import", "--home", str(home), str(bundle), env=env).returncode == 0
    )
    _, shown = live_q.desk_case(home, "MARKER-short", env)
    item = shown["items"][0]
    assert item["sealed_by"] == "browser"
    assert item["content"]["fields"] == {"saw": "MARKER-short two cars at night", "again": "yes"}
