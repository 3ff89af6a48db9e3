"""Journeys more than one browser test walks: report, open a case, wait for it."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from portal.protocol import codes
from tests.harness.browsers import wait
from tests.harness.firefox import AnyDriver
from tests.harness.live import LivePortal

WAIT = 90


def submit(drv: WebDriver, live: LivePortal, text: str) -> str:
    drv.get(live.url + "/report")
    drv.find_element(By.ID, "what_happened").send_keys(text)
    drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
    el = wait(drv, WAIT).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-code]")))
    wait(drv, 30).until(lambda d: len(el.text.replace(" ", "")) == 24)
    return codes.normalise(el.text)


def open_case(drv: WebDriver, live: LivePortal, typed: str) -> None:
    drv.get(live.url + "/case")
    drv.find_element(By.ID, "code").send_keys(typed)
    drv.find_element(By.CSS_SELECTOR, "#case-form button[type=submit]").click()


def wait_for_case(drv: WebDriver) -> None:
    wait(drv, WAIT).until(ec.visibility_of_element_located((By.ID, "case-heading")))


def asks_before_leaving(drv: AnyDriver) -> bool:
    """Whether leaving the page now would ask first. WebDriver accepts the browser's
    own "leave this page?" prompt by itself (in both browsers), so what is checked
    is the page's answer to the event, which is what makes a browser ask."""
    return bool(
        drv.execute_script(
            "const e = new Event('beforeunload', {cancelable: true});"
            "window.dispatchEvent(e); return e.defaultPrevented;"
        )
    )
