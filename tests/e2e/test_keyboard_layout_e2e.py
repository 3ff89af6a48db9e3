"""Keyboard-only flows, visible focus, quick exit, no traces, reflow at 320 px and 200% zoom,
reduced motion, announced progress, and a genuinely mirrored Arabic layout."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from portal.protocol import codes
from tests.harness.a11y import (
    PAGES,
    active_id,
    choose_language,
    focus_is_visible,
    horizontal_overflow,
)
from tests.harness.browsers import chromium, next_page, shown_code, wait
from tests.harness.live import LivePortal

WAIT = 90
MAX_TABS = 80


@pytest.fixture(scope="module")
def live(exit_live: LivePortal) -> LivePortal:
    return exit_live


def press(drv: WebDriver, *keys: str) -> None:
    ActionChains(drv).send_keys(*keys).perform()


def tab_to(drv: WebDriver, selector: str, walked: list[dict[str, Any]]) -> None:
    """Press Tab until ``selector`` has focus, checking every stop shows its focus."""
    for _ in range(MAX_TABS):
        press(drv, Keys.TAB)
        focused = focus_is_visible(drv)
        walked.append(focused)
        assert focused["visible"], f"focus is not visible on {focused}"
        if drv.execute_script("return document.activeElement.matches(arguments[0])", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab: {walked[-10:]}")


@pytest.mark.parametrize("mode", ["js", "nojs"])
def test_a_report_by_keyboard_alone(live: LivePortal, mode: str) -> None:
    with chromium(mode) as drv:
        drv.get(live.url + "/report")
        walked: list[dict[str, Any]] = []
        tab_to(drv, "a.skip-link", walked)
        tab_to(drv, "#what_happened", walked)
        press(drv, "Written with the keyboard only")
        tab_to(drv, "input[name=may_contact]", walked)
        press(drv, Keys.SPACE)
        tab_to(drv, "#language", walked)
        press(drv, "Français")
        if mode == "js":
            drv.execute_script(
                """
                window.announced = [];
                const status = document.getElementById('progress-text');
                new MutationObserver(() => announced.push(status.textContent))
                  .observe(status, {childList: true, subtree: true});
                """
            )
        tab_to(drv, "#report-form button[type=submit]", walked)
        if mode == "nojs":
            next_page(drv, lambda: press(drv, Keys.ENTER))
        else:
            press(drv, Keys.ENTER)
        shown_code(drv, WAIT)
        assert drv.find_element(By.CSS_SELECTOR, "[data-code]").get_attribute("dir") == "ltr"
        if mode == "js":
            assert active_id(drv) == "code-heading", "focus must move to the code"
            status = drv.find_element(By.ID, "progress-text")
            assert status.get_attribute("role") == "status"
            assert status.get_attribute("aria-live") == "polite"
            announced = [t for t in drv.execute_script("return window.announced") if t]
            assert len(set(announced)) >= 3, f"progress was not announced step by step: {announced}"
        assert {w["id"] for w in walked} >= {"what_happened", "language"}


@pytest.mark.parametrize("mode", ["js", "nojs"])
def test_a_case_by_keyboard_alone(live: LivePortal, mode: str) -> None:
    with chromium(mode) as drv:
        drv.get(live.url + "/report")
        drv.find_element(By.ID, "what_happened").send_keys("A case to open by keyboard")
        submit = drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click
        if mode == "nojs":
            next_page(drv, submit)
        else:
            submit()
        code = shown_code(drv, WAIT)

        drv.get(live.url + "/case")
        walked: list[dict[str, Any]] = []
        tab_to(drv, "#code", walked)
        press(drv, codes.format_code(code))
        if mode == "nojs":
            next_page(drv, lambda: press(drv, Keys.ENTER))
        else:
            press(drv, Keys.ENTER)
        wait(drv, WAIT).until(ec.visibility_of_element_located((By.ID, "case-heading")))
        if mode == "js":
            assert active_id(drv) == "case-heading"
        new_code = codes.normalise(drv.find_element(By.CSS_SELECTOR, "[data-new-code]").text)
        tab_to(drv, "#last_group", walked)
        press(drv, codes.last_group(new_code))
        if mode == "js":
            press(drv, Keys.ENTER)
            wait(drv, WAIT).until(ec.visibility_of_element_located((By.ID, "confirm-done")))
            assert active_id(drv) == "confirm-done"
            tab_to(drv, "#message", walked)
            press(drv, "A message typed by keyboard")
            tab_to(drv, "#message-form button[type=submit]", walked)
            press(drv, Keys.ENTER)
            wait(drv, WAIT).until(ec.visibility_of_element_located((By.ID, "message-done")))
            assert active_id(drv) == "message-done"
        else:
            next_page(drv, lambda: press(drv, Keys.ENTER))
            assert active_id(drv) == "confirmed-notice"  # said first, the case still open
            tab_to(drv, "#message", walked)


def test_escape_leaves_at_once_and_back_does_not_return(live: LivePortal, elsewhere: str) -> None:
    with chromium("js") as drv:
        drv.get(elsewhere + "/before")
        drv.get(live.url + "/report")
        wait(drv, 30).until(
            lambda d: d.execute_script("return document.documentElement.classList.contains('js')")
        )
        drv.find_element(By.ID, "what_happened").send_keys("someone is coming")
        drv.find_element(By.TAG_NAME, "h1").click()  # outside a text box, Esc once leaves
        press(drv, Keys.ESCAPE)
        wait(drv, 30).until(lambda d: d.current_url == elsewhere + "/weather")
        drv.back()
        wait(drv, 30).until(lambda d: d.current_url == elsewhere + "/before")


def test_quick_exit_is_a_plain_link_without_javascript(live: LivePortal, elsewhere: str) -> None:
    with chromium("nojs") as drv:
        drv.get(live.url + "/case")
        walked: list[dict[str, Any]] = []
        tab_to(drv, "#quick-exit", walked)
        press(drv, Keys.ENTER)
        wait(drv, 30).until(lambda d: d.current_url == elsewhere + "/weather")


# 200% zoom on a 1280 px window lays a page out in 640 CSS pixels at twice the
# density: the device metrics below are exactly that, without a real screen.
VIEWPORTS = {"320px": (320, 1), "200% zoom": (640, 2)}


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
@pytest.mark.parametrize("lang", ["en", "ar"])
def test_every_page_reflows_without_sideways_scrolling(
    live: LivePortal, viewport: str, lang: str
) -> None:
    width, scale = VIEWPORTS[viewport]
    with chromium("js") as drv:
        choose_language(drv, live, lang)
        drv.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 800, "deviceScaleFactor": scale, "mobile": False},
        )
        problems = {}
        for path in PAGES:
            drv.get(live.url + path)
            assert drv.execute_script("return window.innerWidth") == width
            if found := horizontal_overflow(drv):
                problems[path] = found
        drv.get(live.url + "/report")
        drv.find_element(By.ID, "what_happened").send_keys("Reflow check")
        # A checkbox beside a long label keeps its size: a thin sliver is hard to hit.
        width, height = drv.execute_script(
            "const r = document.getElementById('keep_copy').getBoundingClientRect();"
            "return [r.width, r.height];"
        )
        assert width >= 0.9 * height, f"the copy checkbox is squashed to {width} x {height}"
        drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
        wait(drv, WAIT).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-code]")))
        if found := horizontal_overflow(drv):
            problems["code shown"] = found
        assert problems == {}


def test_reduced_motion_is_respected(live: LivePortal) -> None:
    with chromium("js") as drv:
        drv.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-reduced-motion", "value": "reduce"}]},
        )
        for path in ("/", "/report", "/case"):
            drv.get(live.url + path)
            assert drv.execute_script(
                "return matchMedia('(prefers-reduced-motion: reduce)').matches"
            )
            moving = drv.execute_script(
                """
                return [...document.querySelectorAll('*')].filter((el) => {
                  const s = getComputedStyle(el);
                  const t = s.transitionDuration.split(',').some((d) => parseFloat(d) > 0);
                  return s.animationName !== 'none' || t || s.scrollBehavior === 'smooth';
                }).map((el) => el.tagName + '#' + el.id);
                """
            )
            assert moving == [], f"{path}: {moving}"


def _rect(drv: WebDriver, selector: str, text_only: bool = False) -> dict[str, float]:
    """Where an element (or, with ``text_only``, its text) sits on the line."""
    return dict(
        drv.execute_script(
            "const el = document.querySelector(arguments[0]);"
            "let box = el;"
            "if (arguments[1]) { box = document.createRange(); box.selectNodeContents(el); }"
            "const r = box.getBoundingClientRect();"
            "return {left: r.left, right: r.right};",
            selector,
            text_only,
        )
    )


def _direction(drv: WebDriver, selector: str) -> str:
    return str(
        drv.execute_script(
            "return getComputedStyle(document.querySelector(arguments[0])).direction", selector
        )
    )


def _layout(drv: WebDriver) -> dict[str, Any]:
    width = drv.execute_script("return document.documentElement.clientWidth")
    field = _rect(drv, ".field:has(#what_happened)")
    label = _rect(drv, "label[for=what_happened]", text_only=True)
    first, second = (
        _rect(drv, ".site-header nav li:nth-child(1) a"),
        _rect(drv, ".site-header nav li:nth-child(2) a"),
    )
    radio, radio_label = _rect(drv, "#may_contact-yes"), _rect(drv, "label[for=may_contact-yes]")
    return {
        "page": _direction(drv, "html"),
        "quick exit on the left": _rect(drv, "#quick-exit")["right"] < width / 2,
        "label at the right edge": abs(label["right"] - field["right"]) < 4,
        "label at the left edge": abs(label["left"] - field["left"]) < 4,
        "menu runs right to left": first["left"] > second["left"],
        "radio right of its label": radio["left"] > radio_label["left"],
        "progress": _direction(drv, "#progress-bar"),
        "fingerprint": _direction(drv, ".fingerprint"),
    }


def test_arabic_mirrors_the_layout_but_not_codes(live: LivePortal) -> None:
    with chromium("js") as drv:
        choose_language(drv, live, "en")
        drv.get(live.url + "/report")
        english = _layout(drv)
        choose_language(drv, live, "ar")
        drv.get(live.url + "/report")
        arabic = _layout(drv)
        drv.get(live.url + "/case")
        code_input = _direction(drv, "#code")
    assert english == {
        "page": "ltr",
        "quick exit on the left": False,
        "label at the right edge": False,
        "label at the left edge": True,
        "menu runs right to left": False,
        "radio right of its label": False,
        "progress": "ltr",
        "fingerprint": "ltr",
    }
    assert arabic == {
        "page": "rtl",
        "quick exit on the left": True,
        "label at the right edge": True,
        "label at the left edge": False,
        "menu runs right to left": True,
        "radio right of its label": True,
        "progress": "rtl",
        "fingerprint": "ltr",
    }
    assert code_input == "ltr"


def test_nothing_is_left_in_the_browser_after_a_whole_case(live: LivePortal) -> None:
    """Report, open the case, confirm, send: no storage, no code in any address."""
    with chromium("js") as drv:
        choose_language(drv, live, "ar")
        drv.get(live.url + "/report")
        drv.find_element(By.ID, "what_happened").send_keys("Leave no trace")
        drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
        code = shown_code(drv, WAIT)
        drv.get(live.url + "/case")
        drv.find_element(By.ID, "code").send_keys(codes.format_code(code))
        drv.find_element(By.CSS_SELECTOR, "#case-form button[type=submit]").click()
        wait(drv, WAIT).until(ec.visibility_of_element_located((By.ID, "case-heading")))
        new_code = shown_code(drv, WAIT, selector="[data-new-code]")
        drv.set_script_timeout(20)
        stored = drv.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            (async () => ({
              local: localStorage.length,
              session: sessionStorage.length,
              databases: (await indexedDB.databases()).length,
              caches: self.caches ? (await caches.keys()).length : 0,
              history: history.length,
              href: location.href,
            }))().then(done);
            """
        )
        cookies = drv.get_cookies()
        visited = drv.execute_cdp_cmd("Page.getNavigationHistory", {})["entries"]
    assert stored["local"] == stored["session"] == stored["databases"] == stored["caches"] == 0
    for digits in (code, new_code):
        assert digits not in stored["href"]
        assert all(digits not in entry["url"] for entry in visited)
        assert all(digits not in c["value"] for c in cookies)
    assert {c["name"] for c in cookies} <= {"portal_session", "portal_lang"}
    assert all(c["httpOnly"] and c["sameSite"] == "Strict" and "expiry" not in c for c in cookies)
