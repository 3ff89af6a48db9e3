"""Every reporter page and state through axe-core (WCAG 2.2 AA and best
practice), in English, French, Spanish and Arabic, with JavaScript on and off.
Keyboard, reflow, motion and right-to-left checks are in
test_keyboard_layout_e2e.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from portal.protocol import codes
from tests.harness.a11y import active_id, axe_violations, choose_language
from tests.harness.browsers import chromium, next_page, shown_code, wait
from tests.harness.live import LivePortal

WAIT = 90


def visible(drv: WebDriver, selector: str) -> Callable[[WebDriver], bool]:
    return lambda d: any(e.is_displayed() for e in d.find_elements(By.CSS_SELECTOR, selector))


def unknown_code() -> str:
    return codes.format_code(codes.generate())


class Audit:
    """Collects axe's findings page by page, so one failure shows them all."""

    def __init__(self, drv: WebDriver, mode: str) -> None:
        self.drv = drv
        self.mode = mode
        self.found: dict[str, list[str]] = {}
        self.pages = 0

    def __call__(self, name: str) -> None:
        if self.mode == "scriptless":
            has_js = self.drv.execute_script(
                "return document.documentElement.classList.contains('js')"
            )
            assert not has_js, f"{name}: the portal's script ran; this is not the no-JS page"
        self.pages += 1
        for v in axe_violations(self.drv):
            self.found.setdefault(name, []).append(f"{v['id']} ({v['help']}): {v['nodes'][:3]}")


def walk_with_javascript(drv: WebDriver, live: LivePortal, audit: Audit) -> None:
    drv.get(live.url + "/report")
    audit("report form")
    drv.find_element(By.ID, "what_happened").send_keys("   ")
    drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
    wait(drv, 30).until(visible(drv, "#js-error"))
    assert active_id(drv) == "js-error", "the error summary must receive focus"
    audit("report form, blank description")
    drv.find_element(By.ID, "what_happened").send_keys("Accessibility walk")
    drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
    code = shown_code(drv, WAIT)
    assert active_id(drv) == "code-heading"
    audit("report sent, code shown")

    drv.get(live.url + "/case")
    audit("case code form")
    unknown = unknown_code()
    drv.find_element(By.ID, "code").send_keys(unknown)
    drv.find_element(By.CSS_SELECTOR, "#case-form button[type=submit]").click()
    wait(drv, WAIT).until(visible(drv, "#js-error"))
    assert active_id(drv) == "js-error"
    audit("case code form, no such case")
    # The digits stay, to be corrected rather than typed again from paper.
    typed = drv.find_element(By.ID, "code").get_property("value")
    assert codes.normalise(typed) == codes.normalise(unknown)
    drv.find_element(By.ID, "code").clear()
    drv.find_element(By.ID, "code").send_keys(codes.format_code(code))
    drv.find_element(By.CSS_SELECTOR, "#case-form button[type=submit]").click()
    wait(drv, WAIT).until(visible(drv, "#case-heading"))
    assert active_id(drv) == "case-heading"
    audit("case opened")
    drv.find_element(By.ID, "last_group").send_keys("0000")
    drv.find_element(By.CSS_SELECTOR, "#confirm-form button[type=submit]").click()
    audit("case opened, wrong last digits")


def walk_without_javascript(drv: WebDriver, live: LivePortal, audit: Audit) -> None:
    drv.get(live.url + "/report")
    audit("report form")
    drv.find_element(By.ID, "what_happened").send_keys("   ")
    next_page(drv, drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click)
    wait(drv, WAIT).until(visible(drv, "#error-summary"))
    # autofocus lands once the page is rendered, not when it first shows
    wait(drv, 10).until(lambda d: active_id(d) == "error-summary")
    audit("report form, blank description")
    drv.find_element(By.ID, "what_happened").send_keys("Accessibility walk")
    next_page(drv, drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click)
    code = shown_code(drv, WAIT)
    audit("report sent, code shown")

    drv.get(live.url + "/case")
    audit("case code form")
    drv.find_element(By.ID, "code").send_keys(unknown_code())
    next_page(drv, drv.find_element(By.CSS_SELECTOR, "#case-form button[type=submit]").click)
    wait(drv, WAIT).until(visible(drv, "#error-summary"))
    wait(drv, 10).until(lambda d: active_id(d) == "error-summary")
    audit("case code form, no such case")
    drv.find_element(By.ID, "code").send_keys(codes.format_code(code))
    next_page(drv, drv.find_element(By.CSS_SELECTOR, "#case-form button[type=submit]").click)
    wait(drv, WAIT).until(visible(drv, "#case-heading"))
    audit("case opened")
    drv.find_element(By.ID, "last_group").send_keys("0000")
    next_page(drv, drv.find_element(By.CSS_SELECTOR, "#confirm-form button[type=submit]").click)
    wait(drv, WAIT).until(visible(drv, "#confirm-error"))
    assert active_id(drv) == "last_group", "the field to correct must receive focus"
    audit("new code, wrong last digits")
    new_code = codes.normalise(drv.find_element(By.CSS_SELECTOR, "[data-new-code]").text)
    group = drv.find_element(By.ID, "last_group")
    group.clear()
    group.send_keys(codes.last_group(new_code))
    next_page(drv, drv.find_element(By.CSS_SELECTOR, "#confirm-form button[type=submit]").click)
    wait(drv, WAIT).until(visible(drv, "#confirmed-notice"))
    assert active_id(drv) == "confirmed-notice"
    audit("new code confirmed, case still open")
    drv.find_element(By.ID, "message").send_keys("A message")
    next_page(drv, drv.find_element(By.CSS_SELECTOR, "#message-form button[type=submit]").click)
    wait(drv, WAIT).until(visible(drv, "#message-done-nojs"))
    audit("message sent")
    next_page(drv, drv.find_element(By.CSS_SELECTOR, "#leave-form button[type=submit]").click)
    wait(drv, WAIT).until(visible(drv, "#left-notice"))
    audit("case left")
    drv.get(live.url + "/report/sent")
    audit("code page after it was shown")


@pytest.mark.parametrize("lang", ["en", "fr", "es", "ar"])
@pytest.mark.parametrize("mode", ["js", "scriptless"])
def test_axe_finds_nothing_on_any_reporter_page(live: LivePortal, lang: str, mode: str) -> None:
    with chromium(mode) as drv:
        choose_language(drv, live, lang)
        audit = Audit(drv, mode)
        for path in ("/", "/safety", "/transparency", "/no-such-page"):
            drv.get(live.url + path)
            audit(path)
        walk = walk_with_javascript if mode == "js" else walk_without_javascript
        walk(drv, live, audit)
        assert audit.pages >= 10
        assert audit.found == {}


@pytest.mark.parametrize("path", ["/report", "/case", "/safety"])
def test_scriptless_pages_are_the_no_javascript_pages(live: LivePortal, path: str) -> None:
    """The stand-in axe runs on renders what a browser with JavaScript off renders."""
    seen = {}
    for mode in ("nojs", "scriptless"):
        with chromium(mode) as drv:
            choose_language(drv, live, "ar")
            drv.get(live.url + path)
            seen[mode] = drv.execute_script("return document.body.innerText")
    assert seen["nojs"] == seen["scriptless"]
    assert seen["nojs"].strip()
