"""The reporter's journey as the review walked it, in Chromium and Firefox ESR, in
English and Arabic: an exit that leaves nothing in Back, a code that always
works and is always named, words that are never lost, the truth after a reload,
a code field that is not a password, progress that says what is happening, Send
honoured while files are still going out, and a witness shown the questions first.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from portal.protocol import codes
from portal.protocol.encoding import b64decode
from portal.server.web.sessions import session_id
from tests.harness.a11y import choose_language
from tests.harness.browsers import chromium, next_page, shown_code
from tests.harness.drivers import browser as open_browser
from tests.harness.drivers import mode_of
from tests.harness.firefox import AnyDriver, wait
from tests.harness.journeys import asks_before_leaving
from tests.harness.live import DESK_ENV, LivePortal, cli, fresh_desk_copy, live_portal

WAIT = 90
IDLE = 8  # seconds a case stays open without activity, on the portal that tests idling


@pytest.fixture(scope="module")
def live(exit_live: LivePortal) -> LivePortal:
    return exit_live


@pytest.fixture(scope="module")
def idle_live(tmp_path_factory: pytest.TempPathFactory, desk_home: Path) -> Iterator[LivePortal]:
    """A portal whose cases close after a few seconds, to walk idling out for real."""
    env = {"PORTAL_CASE_IDLE_SECONDS": str(IDLE)}
    with live_portal(
        tmp_path_factory.mktemp("idle"), desk_home / "organization.json", extra_env=env
    ) as portal:
        yield portal


# --- small steps every journey takes ---------------------------------------------------


def scripted(drv: AnyDriver) -> None:
    """Wait until the page's script has run (the html element says so)."""
    wait(drv, 20).until(
        lambda d: d.execute_script("return document.documentElement.classList.contains('js')")
    )


def shown(drv: AnyDriver, element_id: str) -> bool:
    found = drv.find_elements(By.ID, element_id)
    return bool(found) and found[0].is_displayed()


def wait_shown(drv: AnyDriver, element_id: str, seconds: float = WAIT) -> Any:
    wait(drv, seconds).until(lambda d: shown(d, element_id))
    return drv.find_element(By.ID, element_id)


def post(drv: AnyDriver, js: bool, click: Any) -> None:
    """Press a form's button; without JavaScript, wait for the page that follows."""
    if js:
        click()
    else:
        next_page(drv, click)  # type: ignore[arg-type]


def report(drv: AnyDriver, live: LivePortal, text: str, js: bool, keep_copy: bool = False) -> str:
    drv.get(live.url + "/report")
    if js:
        scripted(drv)
    drv.find_element(By.ID, "what_happened").send_keys(text)
    if keep_copy:
        drv.find_element(By.ID, "keep_copy").click()
    post(drv, js, drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click)
    return shown_code(drv, WAIT)  # type: ignore[arg-type]


def open_case(drv: AnyDriver, live: LivePortal, code: str, js: bool) -> None:
    drv.get(live.url + "/case")
    if js:
        scripted(drv)
    type_code(drv, code, js)
    wait_shown(drv, "case-heading")


def type_code(drv: AnyDriver, code: str, js: bool, field: str = "code") -> None:
    box = drv.find_element(By.ID, field)
    box.clear()
    box.send_keys(codes.format_code(code) if len(code) == 24 else code)
    form = box.find_element(By.XPATH, "./ancestor::form")
    post(drv, js, form.find_element(By.CSS_SELECTOR, "button[type=submit]").click)


def new_code(drv: AnyDriver) -> str:
    el = drv.find_element(By.CSS_SELECTOR, "[data-new-code]")
    wait(drv, 30).until(lambda d: len(re.sub(r"\D", "", el.text)) == 24)
    return codes.normalise(el.text)


def names(drv: AnyDriver, element_id: str, code: str) -> bool:
    """The element says which code works: the one ending in these four digits."""
    el = drv.find_element(By.ID, element_id)
    return el.is_displayed() and code[-4:] in [
        d.text for d in el.find_elements(By.CSS_SELECTOR, ".code-digits")
    ]


def opens(live: LivePortal, code: str) -> bool:
    """Whether a code opens its case, tried in a fresh browser without JavaScript."""
    with chromium("nojs") as other:
        other.get(live.url + "/case")
        type_code(other, code, js=False)
        return bool(other.find_elements(By.ID, "case-heading")) and shown(other, "case-heading")


def session_stored(live: LivePortal, cookie: str) -> bool:
    """Whether the portal still holds the session this cookie names."""
    with sqlite3.connect(live.data_dir / "portal.sqlite") as db:
        found = db.execute(
            "SELECT count(*) FROM sessions WHERE id = ?", (session_id(b64decode(cookie)),)
        ).fetchone()
    return bool(found[0])


def mailboxes(live: LivePortal) -> int:
    with sqlite3.connect(live.data_dir / "portal.sqlite") as db:
        return int(db.execute("SELECT count(*) FROM mailboxes").fetchone()[0])


def no_resubmission(drv: AnyDriver) -> None:
    """The page is one of the portal's, not a browser's "resend the form?" error."""
    wait(drv, 20).until(lambda d: d.find_elements(By.ID, "main"))
    assert drv.find_elements(By.ID, "quick-exit")


# --- 1. Quick exit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("browser", "level", "lang"),
    [("chromium", "js", "en"), ("chromium", "js", "ar"), ("firefox", "standard", "en")],
)
def test_quick_exit_leaves_no_portal_page_in_back(
    live: LivePortal, elsewhere: str, browser: str, level: str, lang: str
) -> None:
    with open_browser(browser, level) as drv:
        choose_language(drv, live, lang)  # type: ignore[arg-type]
        drv.get(elsewhere + "/before")
        drv.get(live.url + "/")
        scripted(drv)
        drv.find_element(By.CSS_SELECTOR, ".site-header nav li:nth-child(1) a").click()
        wait(drv, 30).until(lambda d: d.current_url.endswith("/report"))
        scripted(drv)
        box = drv.find_element(By.ID, "what_happened")
        box.send_keys("they are outside")
        # Esc once inside a text box (meant for the box, or an input method's
        # cancel) throws nothing away; a composing Esc never counts.
        box.send_keys(Keys.ESCAPE)
        drv.execute_script(
            "for (let i = 0; i < 3; i++) document.getElementById('what_happened').dispatchEvent("
            "new KeyboardEvent('keydown', {key: 'Escape', isComposing: true, bubbles: true}));"
        )
        time.sleep(0.5)
        assert drv.current_url.endswith("/report")
        assert drv.find_element(By.ID, "what_happened").get_property("value") == "they are outside"
        (cookie,) = [c for c in drv.get_cookies() if c["name"] == "portal_session"]
        assert session_stored(live, cookie["value"])
        drv.find_element(By.ID, "quick-exit").click()  # never asks "leave the page?"
        wait(drv, 30).until(lambda d: d.current_url == elsewhere + "/weather")
        # Gone at once, and /exit asked on the way: the session is ended on the portal.
        wait(drv, 30).until(lambda _d: not session_stored(live, cookie["value"]))
        drv.back()
        wait(drv, 30).until(lambda d: d.current_url == elsewhere + "/before")

        # Esc twice in a row inside a box leaves too, and Back skips the portal again.
        drv.get(live.url + "/report")
        scripted(drv)
        box = drv.find_element(By.ID, "what_happened")
        box.send_keys("again", Keys.ESCAPE, Keys.ESCAPE)
        wait(drv, 30).until(lambda d: d.current_url == elsewhere + "/weather")
        drv.back()
        wait(drv, 30).until(lambda d: d.current_url == elsewhere + "/before")


@pytest.mark.parametrize(("browser", "level"), [("chromium", "nojs"), ("firefox", "safest")])
def test_without_javascript_the_safety_page_says_what_back_can_show(
    live: LivePortal, elsewhere: str, browser: str, level: str
) -> None:
    """And what Back brings is empty: the exit ended the session, so the case that
    was open, with a new code not yet confirmed, is not there to see or take."""
    with open_browser(browser, level) as drv:
        drv.get(elsewhere + "/before")
        code = report(drv, live, "a case left by quick exit", js=False)
        open_case(drv, live, code, js=False)
        pending = new_code(drv)
        drv.get(live.url + "/safety")
        text = drv.find_element(By.ID, "main").text
        assert "the Back button can bring back the pages of this portal" in text
        assert not drv.find_element(By.CSS_SELECTOR, ".quick-exit-hint").is_displayed()
        drv.find_element(By.ID, "quick-exit").click()
        wait(drv, 30).until(lambda d: d.current_url == elsewhere + "/weather")
        drv.back()  # exactly what the page said: the portal's page is there
        wait(drv, 30).until(lambda d: d.current_url == live.url + "/safety")
        drv.back()  # the case's page: no case in it, from the portal or the browser's memory
        wait(drv, 30).until(lambda d: d.current_url == live.url + "/case")
        no_resubmission(drv)
        assert shown(drv, "case-form") and not shown(drv, "case-view")
        digits = re.sub(r"\D", "", drv.page_source)
        assert pending[-8:] not in digits and code[-8:] not in digits


# --- 2 and 4. The no-JS case: a code that always works and is always named -----------


@pytest.mark.parametrize(
    ("browser", "level", "lang"), [("chromium", "nojs", "en"), ("firefox", "safest", "ar")]
)
def test_without_javascript_every_order_keeps_a_working_code_named(
    live: LivePortal, browser: str, level: str, lang: str
) -> None:
    before = mailboxes(live)
    with open_browser(browser, level) as drv:
        choose_language(drv, live, lang)  # type: ignore[arg-type]
        first = report(drv, live, "a report, then a reload", js=False)
        # Reloading the code page (a resubmit, before) tells the truth, stores nothing.
        drv.refresh()
        wait_shown(drv, "already-received")
        assert not drv.find_elements(By.CSS_SELECTOR, "[data-code]")
        assert mailboxes(live) == before + 1
        drv.back()
        no_resubmission(drv)

        # A typing mistake gets the check-digit hint, as with JavaScript.
        drv.get(live.url + "/case")
        typo = first[:5] + str((int(first[5]) + 1) % 10) + first[6:]
        type_code(drv, typo, js=False)
        wait_shown(drv, "typo-hint")
        type_code(drv, first, js=False)
        wait_shown(drv, "case-heading")
        second = new_code(drv)
        assert names(drv, "code-status", first)  # until confirmed, the old one works
        # The group to type is underlined, and comes last to the eye in a right-to-left
        # page too: on the last line the code takes, rightmost.
        groups = drv.execute_script(
            "return [...document.querySelectorAll('[data-new-code] .code-half')]"
            ".flatMap((h) => [...h.childNodes]).map((n) => {"
            " const r = document.createRange(); r.selectNodeContents(n);"
            " const box = r.getBoundingClientRect();"
            " return [n.textContent.trim(), box.right, box.bottom,"
            " n.nodeType === 1 && n.classList.contains('code-last')]; })"
        )
        (last,) = [g for g in groups if g[3]]
        assert last[0] == second[-4:], groups
        assert last[2] >= max(g[2] for g in groups) - 1, groups
        assert last[1] >= max(g[1] for g in groups if abs(g[2] - last[2]) < 1) - 1, groups

        # A message before confirming: the case and the new code stay, still named.
        drv.find_element(By.ID, "message").send_keys("before confirming")
        post(drv, False, drv.find_element(By.CSS_SELECTOR, "#message-form [type=submit]").click)
        wait_shown(drv, "message-done-nojs")
        assert new_code(drv) == second and names(drv, "code-status", first)
        drv.refresh()  # a GET: no "resend the form?", the same case and code
        wait_shown(drv, "case-heading")
        assert new_code(drv) == second
        drv.back()
        no_resubmission(drv)
        drv.forward()
        wait_shown(drv, "case-heading")

        # Confirming keeps the case open and names the new code.
        drv.find_element(By.ID, "last_group").send_keys(second[-4:])
        post(drv, False, drv.find_element(By.CSS_SELECTOR, "#confirm-form [type=submit]").click)
        wait_shown(drv, "confirmed-notice")
        assert names(drv, "confirm-done", second) and shown(drv, "message-form")
        drv.find_element(By.ID, "message").send_keys("after confirming")
        post(drv, False, drv.find_element(By.CSS_SELECTOR, "#message-form [type=submit]").click)
        wait_shown(drv, "message-done-nojs")
        assert len(drv.find_elements(By.CSS_SELECTOR, "#sent-list > li")) == 3

        # Leaving names the code that opens the case next time.
        post(drv, False, drv.find_element(By.CSS_SELECTOR, "#leave-form [type=submit]").click)
        wait_shown(drv, "left-notice")
        assert names(drv, "left-notice", second)
    assert not opens(live, first) and opens(live, second)


def test_without_javascript_two_tabs_show_the_newest_code(live: LivePortal) -> None:
    with chromium("nojs") as drv:
        first = report(drv, live, "two tabs", js=False)
        drv.get(live.url + "/case")
        one = drv.current_window_handle
        drv.switch_to.new_window("tab")
        drv.get(live.url + "/case")  # both tabs show the code form
        two = drv.current_window_handle
        drv.switch_to.window(one)
        type_code(drv, first, js=False)
        in_tab_one = new_code(drv)
        drv.switch_to.window(two)
        type_code(drv, first, js=False)  # the same browser opens it again
        in_tab_two = new_code(drv)
        drv.switch_to.window(one)  # tab one still shows its own, older new code
        drv.find_element(By.ID, "last_group").send_keys(in_tab_one[-4:])
        post(drv, False, drv.find_element(By.CSS_SELECTOR, "#confirm-form [type=submit]").click)
        wait_shown(drv, "superseded")
        assert new_code(drv) == in_tab_two and names(drv, "code-status", first)
        drv.find_element(By.ID, "last_group").send_keys(in_tab_two[-4:])
        post(drv, False, drv.find_element(By.CSS_SELECTOR, "#confirm-form [type=submit]").click)
        wait_shown(drv, "confirmed-notice")
        drv.switch_to.window(two)  # the other tab, stale, confirms the same code again
        drv.find_element(By.ID, "last_group").send_keys(in_tab_two[-4:])
        post(drv, False, drv.find_element(By.CSS_SELECTOR, "#confirm-form [type=submit]").click)
        wait_shown(drv, "confirmed-notice")
        assert names(drv, "confirm-done", in_tab_two)
        post(drv, False, drv.find_element(By.CSS_SELECTOR, "#leave-form [type=submit]").click)
        drv.switch_to.window(one)
        drv.refresh()  # left in the other tab: this one says so, and names the code
        wait_shown(drv, "closed-notice")
        assert names(drv, "closed-notice", in_tab_two)
    assert opens(live, in_tab_two) and not opens(live, first) and not opens(live, in_tab_one)


@pytest.mark.parametrize(("browser", "level"), [("chromium", "nojs"), ("firefox", "safest")])
def test_without_javascript_a_second_report_tab_gets_its_words_back_unsent(
    live: LivePortal, browser: str, level: str
) -> None:
    """Two report tabs share one form token: once the first is sent, the second is
    neither told "already received" nor stripped of its words (the browser's own
    Sec-Fetch-Site says the form is the portal's)."""
    before = mailboxes(live)
    with open_browser(browser, level) as drv:
        drv.get(live.url + "/report")
        one = drv.current_window_handle
        drv.switch_to.new_window("tab")
        drv.get(live.url + "/report")
        drv.find_element(By.ID, "what_happened").send_keys("the second incident")
        drv.switch_to.window(one)
        report_button = "#report-form button[type=submit]"
        drv.find_element(By.ID, "what_happened").send_keys("the first incident")
        post(drv, False, drv.find_element(By.CSS_SELECTOR, report_button).click)
        shown_code(drv, WAIT)  # type: ignore[arg-type]
        drv.close()
        drv.switch_to.window(drv.window_handles[0])
        post(drv, False, drv.find_element(By.CSS_SELECTOR, report_button).click)
        wait_shown(drv, "stale")
        box = drv.find_element(By.ID, "what_happened")
        assert box.get_attribute("value") == "the second incident"
        assert not drv.find_elements(By.ID, "already-received")
        assert mailboxes(live) == before + 1
        post(drv, False, drv.find_element(By.CSS_SELECTOR, report_button).click)
        shown_code(drv, WAIT)  # type: ignore[arg-type]
    assert mailboxes(live) == before + 2


@pytest.mark.parametrize(("browser", "level"), [("chromium", "jitless"), ("firefox", "safer")])
def test_with_javascript_a_second_report_tab_takes_a_new_token_and_sends(
    live: LivePortal, browser: str, level: str
) -> None:
    """The same two tabs with the script: the second's token was spent by the first
    one's report, so its page takes a new one and sends, instead of asking for a
    reload that could clear what was written."""
    before = mailboxes(live)
    report_button = "#report-form button[type=submit]"
    with open_browser(browser, level) as drv:
        drv.get(live.url + "/report")
        scripted(drv)
        one = drv.current_window_handle
        drv.switch_to.new_window("tab")
        drv.get(live.url + "/report")
        scripted(drv)
        drv.find_element(By.ID, "what_happened").send_keys("the second incident")
        drv.switch_to.window(one)
        drv.find_element(By.ID, "what_happened").send_keys("the first incident")
        drv.find_element(By.CSS_SELECTOR, report_button).click()
        first = shown_code(drv, WAIT)  # type: ignore[arg-type]
        drv.close()
        drv.switch_to.window(drv.window_handles[0])
        drv.find_element(By.CSS_SELECTOR, report_button).click()
        second = shown_code(drv, WAIT)  # type: ignore[arg-type]
        assert not shown(drv, "js-error")
    assert first != second
    assert mailboxes(live) == before + 2
    assert opens(live, first) and opens(live, second)


@pytest.mark.parametrize(("browser", "level"), [("chromium", "nojs"), ("firefox", "safest")])
def test_without_javascript_an_idle_case_gives_the_words_back_and_names_the_code(
    idle_live: LivePortal, browser: str, level: str
) -> None:
    with open_browser(browser, level) as drv:
        first = report(drv, idle_live, "idle", js=False)
        open_case(drv, idle_live, first, js=False)
        drv.find_element(By.ID, "message").send_keys("typed slowly, for too long")
        time.sleep(IDLE + 1)
        post(drv, False, drv.find_element(By.CSS_SELECTOR, "#message-form [type=submit]").click)
        wait_shown(drv, "unsent-heading")
        text = drv.find_element(By.ID, "main").text
        assert "Nothing was lost" not in text
        assert drv.find_element(By.ID, "unsent").get_property("value") == (
            "typed slowly, for too long"
        )
        assert first[-4:] in [d.text for d in drv.find_elements(By.CSS_SELECTOR, ".code-digits")]
        type_code(drv, first, js=False)  # the form right there opens it again
        wait_shown(drv, "case-heading")


def test_without_javascript_a_message_outliving_its_session_comes_back(
    live: LivePortal,
) -> None:
    """Tor Browser at Safest: the session ends while the reporter writes (as after
    hours, or Leave in another tab). Send gives the words back, with the form
    that opens the case again, rather than a page saying the form expired."""
    with open_browser("firefox", "safest") as drv:
        first = report(drv, live, "outlived", js=False)
        open_case(drv, live, first, js=False)
        drv.find_element(By.ID, "message").send_keys("written over an afternoon")
        drv.delete_cookie("portal_session")
        post(drv, False, drv.find_element(By.CSS_SELECTOR, "#message-form [type=submit]").click)
        wait_shown(drv, "unsent-heading")
        assert drv.find_element(By.ID, "unsent").get_property("value") == (
            "written over an afternoon"
        )
        type_code(drv, first, js=False)
        wait_shown(drv, "case-heading")


# --- 3. With JavaScript: no words lost -------------------------------------------------


@pytest.mark.parametrize(("browser", "level"), [("chromium", "js"), ("firefox", "standard")])
def test_with_javascript_a_link_mid_report_asks_and_the_words_stay(
    live: LivePortal, browser: str, level: str
) -> None:
    with open_browser(browser, level) as drv:
        drv.get(live.url + "/report")
        scripted(drv)
        assert not asks_before_leaving(drv)  # nothing typed: nothing to lose
        drv.find_element(By.ID, "what_happened").send_keys("half a report")
        assert asks_before_leaving(drv)
        # Links within the portal replace this page (one entry in Back), and that
        # too goes through the question: the words are not wiped without asking.
        replaced = drv.execute_script(
            "const a = document.querySelector(arguments[0]);"
            "const e = new MouseEvent('click', {bubbles: true, cancelable: true, button: 0});"
            "a.dispatchEvent(e); return e.defaultPrevented;",
            "a[href='/safety']",
        )
        assert replaced is True
        wait(drv, 30).until(lambda d: d.current_url.endswith("/safety"))  # WebDriver said yes


def test_with_javascript_a_link_from_the_code_page_asks_in_the_pages_words(
    live: LivePortal,
) -> None:
    """The code is shown once, on the page that sent the report. A language link
    there asks whether it was written down, in the portal's words, before the
    page goes; No keeps the code on screen, Yes leaves without a second question."""
    with chromium("js") as drv:
        code = report(drv, live, "a code to keep", js=True)
        french = "a[hreflang=fr]"
        drv.find_element(By.CSS_SELECTOR, french).click()
        alert = wait(drv, 10).until(lambda d: d.switch_to.alert)
        assert alert.text.startswith("Have you written your code down?")
        alert.dismiss()
        assert codes.normalise(drv.find_element(By.CSS_SELECTOR, "[data-code]").text) == code
        drv.find_element(By.CSS_SELECTOR, french).click()
        wait(drv, 10).until(lambda d: d.switch_to.alert).accept()
        lang = "return document.documentElement.lang"
        wait(drv, 30).until(lambda d: d.execute_script(lang) == "fr")


@pytest.mark.parametrize(("browser", "level"), [("chromium", "js"), ("firefox", "standard")])
def test_with_javascript_typing_keeps_the_case_open_and_idling_keeps_the_words(
    idle_live: LivePortal, browser: str, level: str
) -> None:
    with open_browser(browser, level) as drv:
        first = report(drv, idle_live, "kept alive", js=True)
        open_case(drv, idle_live, first, js=True)
        assert drv.title.startswith("Your case")
        assert names(drv, "code-status", first)
        box = drv.find_element(By.ID, "message")
        started = time.monotonic()
        while time.monotonic() - started < IDLE * 1.6:  # longer than the idle limit
            box.send_keys("word ")
            time.sleep(1.5)
        drv.find_element(By.CSS_SELECTOR, "#message-form [type=submit]").click()
        wait_shown(drv, "message-done")
        assert len(drv.find_elements(By.CSS_SELECTOR, "#sent-list > li")) == 2

        # Words left in the box while nothing happens: the case closes, the words stay,
        # and the case opens again right here, with the code the page named.
        box.send_keys("the words I must not lose")
        assert asks_before_leaving(drv)
        wait_shown(drv, "js-error", IDLE + 20)
        assert (
            drv.find_element(By.ID, "message")
            .get_property("value")
            .endswith("the words I must not lose")
        )
        # What the case holds leaves the screen with it: the new code (dead now) too.
        assert not shown(drv, "new-code-section") and not shown(drv, "replies-section")
        # Send, while it is closed, says what to do instead of doing nothing.
        drv.find_element(By.CSS_SELECTOR, "#message-form [type=submit]").click()
        assert "open your case again above" in wait_shown(drv, "message-error").text
        type_code(drv, first, js=True)
        wait(drv, WAIT).until(lambda d: not shown(d, "case-entry") and shown(d, "case-heading"))
        assert shown(drv, "new-code-section") and shown(drv, "confirm-form")
        assert names(drv, "code-status", first)
        assert drv.find_element(By.ID, "code").get_property("value") == ""
        assert (
            drv.find_element(By.ID, "message")
            .get_property("value")
            .endswith("the words I must not lose")
        )
        drv.find_element(By.CSS_SELECTOR, "#message-form [type=submit]").click()
        wait_shown(drv, "message-done")


def test_with_javascript_a_file_alone_is_kept_and_a_removed_one_sends_nothing(
    idle_live: LivePortal, tmp_path: Path
) -> None:
    """Send pressed while the only file goes out, then the file removed: nothing is
    sealed, and the page asks for words or a file. A file alone, then nothing
    happens: the case closes but the file stays listed, and goes once the case
    is open again."""
    big, photo = tmp_path / "big.mov", tmp_path / "later.jpg"
    big.write_bytes(os.urandom(2_500_000))
    photo.write_bytes(os.urandom(20_000))
    link = "Network.emulateNetworkConditions"
    fast = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    with chromium("js") as drv:
        first = report(drv, idle_live, "a file alone", js=True)
        open_case(drv, idle_live, first, js=True)
        drv.find_element(By.ID, "message").send_keys("first words")
        drv.find_element(By.CSS_SELECTOR, "#message-form [type=submit]").click()
        wait_shown(drv, "message-done")
        drv.execute_cdp_cmd("Network.enable", {})
        drv.execute_cdp_cmd(link, {**fast, "uploadThroughput": 100_000})
        drv.find_element(By.ID, "files").send_keys(str(big))
        drv.find_element(By.CSS_SELECTOR, "#message-form [type=submit]").click()
        # Send pressed while the file goes out: it says it waits, and the last
        # message's "sent" is gone, so nobody takes it for this one's.
        wait_shown(drv, "message-waiting")
        assert not shown(drv, "message-done")
        drv.find_element(By.CSS_SELECTOR, "#file-list [data-action=remove]").click()
        assert "write a message or add a file" in wait_shown(drv, "message-error").text
        assert not shown(drv, "message-done") and not shown(drv, "message-waiting")
        assert len(drv.find_elements(By.CSS_SELECTOR, "#sent-list > li")) == 2
        drv.execute_cdp_cmd(link, fast)

        drv.find_element(By.ID, "files").send_keys(str(photo))
        assert not shown(drv, "message-error")  # a file chosen: the refusal is over
        wait_shown(drv, "js-error", IDLE + 20)  # closed, for nothing happened
        names = [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#file-list .file-name")]
        assert names == ["later.jpg"]
        type_code(drv, first, js=True)
        wait(drv, WAIT).until(lambda d: not shown(d, "case-entry") and shown(d, "case-heading"))
        drv.find_element(By.CSS_SELECTOR, "#message-form [type=submit]").click()
        wait_shown(drv, "message-done")
        assert len(drv.find_elements(By.CSS_SELECTOR, "#sent-list > li")) == 3


def test_with_javascript_a_file_going_out_keeps_the_case_open(
    idle_live: LivePortal, tmp_path: Path
) -> None:
    """On a slow link a file takes longer than the idle limit to go out, while the
    reporter, waiting, touches nothing: the upload is activity while its parts
    move (one every few seconds here), so the case stays open, the file
    arrives, and the message goes with it."""
    path = tmp_path / "video.mp4"
    path.write_bytes(os.urandom(4_500_000))
    with chromium("js") as drv:
        first = report(drv, idle_live, "a file on a slow link", js=True)
        open_case(drv, idle_live, first, js=True)
        drv.find_element(By.ID, "message").send_keys("the video")
        drv.execute_cdp_cmd("Network.enable", {})
        slow = {"offline": False, "latency": 20, "downloadThroughput": -1}
        link = "Network.emulateNetworkConditions"
        drv.execute_cdp_cmd(link, {**slow, "uploadThroughput": 250_000})
        drv.find_element(By.ID, "files").send_keys(str(path))
        time.sleep(IDLE * 2)  # no key, no click: only the file going out
        assert not shown(drv, "js-error"), "the case closed under a file going out"
        drv.execute_cdp_cmd(link, {**slow, "uploadThroughput": -1})
        drv.find_element(By.CSS_SELECTOR, "#message-form [type=submit]").click()
        wait_shown(drv, "message-done")


# --- 5. The code field ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("browser", "level"),
    [("chromium", "js"), ("chromium", "nojs"), ("firefox", "standard"), ("firefox", "safest")],
)
def test_the_code_field_is_plain_text_grouped_and_can_be_shown(
    live: LivePortal, browser: str, level: str
) -> None:
    with open_browser(browser, level) as drv:
        drv.get(live.url + "/case")
        field = drv.find_element(By.ID, "code")
        assert field.get_attribute("type") == "text"  # no "save password?"
        assert field.get_attribute("autocomplete") == "off"
        assert field.get_attribute("placeholder") == "0000 0000 0000 0000 0000 0000"
        if mode_of(browser, level) == "nojs":
            assert "six groups of four" in drv.find_element(By.ID, "code-hint").text
            return  # computed styles need a script; the CSS is the same
        masked = "return getComputedStyle(document.getElementById('code')).webkitTextSecurity"
        assert drv.execute_script(masked) == "disc"
        drv.find_element(By.CSS_SELECTOR, "label[for=code-show]").click()
        assert drv.execute_script(masked) == "none"
        scripted(drv)
        field.send_keys("123456789012")
        assert field.get_property("value") == "1234 5678 9012"  # grouped as it is written
        field.clear()
        field.send_keys("1234 5678 9012 3456 7890 1235")  # a wrong check digit
        drv.find_element(By.CSS_SELECTOR, "#case-form [type=submit]").click()
        wait_shown(drv, "code-error", 10)


# --- 6 and 9. Progress, the code page -------------------------------------------------


def _watch_progress(drv: AnyDriver) -> None:
    drv.execute_script(
        """
        window.seen = [];
        window.panelInView = null;
        const status = document.getElementById('progress-text');
        const elapsed = document.getElementById('progress-elapsed');
        const panel = document.getElementById('progress-panel');
        new MutationObserver(() => {
          window.seen.push({t: performance.now(), text: status.textContent, kind: 'step'});
          if (window.panelInView === null) {
            requestAnimationFrame(() => {
              const r = panel.getBoundingClientRect();
              window.panelInView = r.top >= 0 && r.bottom <= window.innerHeight;
            });
          }
        }).observe(status, {childList: true, characterData: true, subtree: true});
        new MutationObserver(() => window.seen.push({text: elapsed.textContent, kind: 'elapsed'}))
          .observe(elapsed, {childList: true, characterData: true, subtree: true});
        """
    )


# Chromium, whose DevTools can make the network as slow as a Tor circuit: sealing
# is now over in well under a second, and the timer must still be seen to count.
@pytest.mark.parametrize(("level", "lang"), [("jitless", "en"), ("js", "ar")])
def test_progress_names_the_running_step_in_view_in_good_grammar(
    live: LivePortal, level: str, lang: str
) -> None:
    with open_browser("chromium", level, width=360, height=640) as drv:  # a phone
        choose_language(drv, live, lang)  # type: ignore[arg-type]
        drv.get(live.url + "/report")
        scripted(drv)
        drv.find_element(By.ID, "what_happened").send_keys("progress " * 40)
        texts = drv.execute_script(
            "return Object.fromEntries([...document.getElementById('progress-messages')"
            ".content.querySelectorAll('[data-step]')].map((e) => [e.dataset.step, e.textContent]))"
        )
        _watch_progress(drv)
        button = drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]")
        drv.execute_script("arguments[0].scrollIntoView({block: 'end'})", button)
        drv.execute_cdp_cmd("Network.enable", {})  # type: ignore[union-attr]
        drv.execute_cdp_cmd(  # type: ignore[union-attr]
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 2500, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        button.click()
        shown_code(drv, 420)  # type: ignore[arg-type]
        seen = drv.execute_script("return window.seen")
        assert drv.execute_script("return window.panelInView") is True
        steps = [s for s in seen if s["kind"] == "step" and s["text"]]
        held = {}
        for this, after in zip(steps, [*steps[1:], {"t": steps[-1]["t"]}], strict=True):
            held[this["text"]] = held.get(this["text"], 0) + after["t"] - this["t"]
        # Each step is named while it runs, in order, with its number.
        named = [next((k for k in texts if text.startswith(texts[k])), None) for text in held]
        assert named == sorted(n for n in named if n is not None), held
        assert {"2", "3"} <= set(named), held
        elapsed = [s["text"] for s in seen if s["kind"] == "elapsed" and s["text"]]
        variants = drv.execute_script(
            "return [...document.getElementById('unit-texts').content"
            ".querySelectorAll('[data-unit=seconds_so_far]')].map((e) => e.textContent)"
        )
        assert elapsed, "no time was shown"
        for text in elapsed:  # each in one of the language's plural forms
            assert any(
                re.fullmatch(re.escape(v).replace(r"\{n\}", r"\d+"), text) for v in variants
            ), text
            if lang == "en":  # "1 second", "2 seconds": never "1 seconds"
                n, unit = re.fullmatch(r"(\d+) (seconds?) so far", text).groups()  # type: ignore[union-attr]
                assert (unit == "second") == (n == "1"), text
        # The heading that takes focus is not under the sticky Quick exit bar, and the
        # code breaks three groups and three groups.
        top = drv.execute_script(
            "return [document.getElementById('code-heading').getBoundingClientRect().top,"
            " document.querySelector('.quick-exit-bar').getBoundingClientRect().bottom]"
        )
        assert top[0] >= top[1] - 1, top
        halves = drv.execute_script(
            "return [...document.querySelectorAll('[data-code] .code-half')].map("
            "(h) => [h.textContent.split(' ').length, h.getClientRects().length])"
        )
        assert halves == [[3, 1], [3, 1]]
        assert drv.title.split(" · ")[0] == drv.find_element(By.ID, "code-heading").text


def test_without_javascript_the_report_page_says_files_take_time(live: LivePortal) -> None:
    with chromium("nojs") as drv:
        drv.get(live.url + "/report")
        text = drv.find_element(By.ID, "files-field").text
        assert "Press it once" in text and "keep writing while they are sent" not in text


# --- 7. Send pressed while a file is still going out ----------------------------------


@pytest.mark.parametrize(
    ("browser", "level", "lang", "megabytes"),
    [
        ("chromium", "js", "ar", 4),
        ("firefox", "standard", "en", 4),
        ("firefox", "safer", "en", 1),
    ],
)
def test_send_pressed_while_a_file_is_going_out_sends_the_report(
    live: LivePortal, tmp_path: Path, browser: str, level: str, lang: str, megabytes: int
) -> None:
    evidence = tmp_path / "evidence.bin"
    evidence.write_bytes(os.urandom(megabytes * 1024 * 1024))
    before = mailboxes(live)
    with open_browser(browser, level) as drv:
        choose_language(drv, live, lang)  # type: ignore[arg-type]
        drv.get(live.url + "/report")
        scripted(drv)
        drv.find_element(By.ID, "what_happened").send_keys("with a file, sent at once")
        waiting = drv.execute_script(
            "return document.querySelector('#progress-messages').content"
            ".querySelector('[data-step=waiting]').textContent"
        )
        _watch_progress(drv)
        drv.find_element(By.ID, "files").send_keys(str(evidence))
        size = drv.execute_script(
            "const s = document.querySelector('#file-list .file-size');"
            "return [s.tagName, s.textContent]"
        )
        drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
        shown_code(drv, 600)  # type: ignore[arg-type]
        steps = [s["text"] for s in drv.execute_script("return window.seen") if s["text"]]
    assert mailboxes(live) == before + 1
    with sqlite3.connect(live.data_dir / "portal.sqlite") as db:
        claimed = db.execute(
            "SELECT count(*) FROM attachments WHERE mailbox_id IS NOT NULL AND size > ?",
            (megabytes * 1024 * 1024,),
        ).fetchone()[0]
    assert claimed >= 1
    # The size reads number first in every language, isolated from the text around it.
    assert size[0] == "BDI" and re.fullmatch(r"[\d.,]+ \S+", size[1]), size
    if level == "safer":  # encrypting a megabyte without JIT takes seconds: it waited, and said so
        assert waiting in steps, steps


def _open_details(drv: AnyDriver, item: WebElement) -> None:
    # Centred first: an element left at the top of the window sits under the sticky bar.
    summary = item.find_element(By.TAG_NAME, "summary")
    drv.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)
    summary.click()


# --- 8. A witness, status-only replies, what was sent, and the reporter's own copy -----


@pytest.mark.parametrize("level", ["js", "nojs"])
def test_a_witness_sees_the_questions_first_and_a_reporter_rereads_their_copy(
    live: LivePortal, desk_home: Path, tmp_path: Path, level: str
) -> None:
    js = level == "js"
    home = fresh_desk_copy(desk_home, tmp_path / "desk")
    questions = tmp_path / "questions.txt"
    questions.write_text(f"WITNESS-{level}: what did you see on the bridge?", encoding="utf-8")
    printed = cli(live, "desk", "invite", "--home", str(home), "--questions", str(questions))
    witness_code = codes.normalise(printed.strip().splitlines()[-2])
    words = f"copy{level}mark my own words"  # one word no other report in the module holds
    with chromium(level) as drv:
        mine = report(drv, live, words, js=js, keep_copy=True)
    # The desk finds the report and answers with a status alone.
    cli(live, "export-inbox", str(tmp_path / "inbox.tar"))
    cli(live, "desk", "import", "--home", str(home), str(tmp_path / "inbox.tar"))
    case, _ = live.desk_case(home, f"copy{level}mark", DESK_ENV)
    cli(live, "desk", "reply", case, "--home", str(home), "--status", "closed")
    cli(live, "desk", "export", "--home", str(home), str(tmp_path / "outbox.tar"))
    cli(live, "import-outbox", str(tmp_path / "outbox.tar"))

    with chromium(level) as drv:
        open_case(drv, live, witness_code, js=js)
        assert drv.title.startswith("Questions for you")
        assert drv.find_element(By.ID, "case-heading").text == "Questions for you"
        order = drv.execute_script(
            "return [...document.querySelectorAll('#case-sections > *')]"
            ".filter((e) => !e.hidden).map((e) => e.id)"
        )
        assert order.index("questions-section") < order.index("message-section")
        assert order.index("message-section") < order.index("new-code-section")
        assert "on the bridge" in drv.find_element(By.ID, "questions-section").text
        assert not shown(drv, "status-section")

    with chromium(level) as drv:
        open_case(drv, live, mine, js=js)
        replies = drv.find_elements(By.CSS_SELECTOR, "#reply-list > li")
        assert len(replies) == 1
        body = replies[0].find_elements(By.CSS_SELECTOR, ".reply-text")
        assert all(not b.is_displayed() for b in body)  # a status alone: no empty box
        sent = drv.find_elements(By.CSS_SELECTOR, "#sent-list > li")
        assert len(sent) == 1
        _open_details(drv, sent[0])
        assert words in sent[0].text
        drv.find_element(By.ID, "message").send_keys("a follow-up I keep")
        drv.find_element(By.ID, "keep_copy").click()
        done = "message-done" if js else "message-done-nojs"
        post(drv, js, drv.find_element(By.CSS_SELECTOR, "#message-form [type=submit]").click)
        wait_shown(drv, done)
        sent = drv.find_elements(By.CSS_SELECTOR, "#sent-list > li")
        assert len(sent) == 2  # what was sent updates at once
        _open_details(drv, sent[1])
        assert "a follow-up I keep" in sent[1].text
