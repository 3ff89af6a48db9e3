"""Subresource Integrity for the crypto library, in a real browser.

A proxy between Chromium and gunicorn changes one byte stream: the crypto
worker's script. The page must refuse to run it and send nothing; through the
same proxy, untouched, the report goes through, so the proxy is not the cause.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests.harness.browsers import chromium, sent_requests, shown_code, wait
from tests.harness.live import LivePortal
from tests.harness.proxy import Proxy, through
from tests.harness.proxy import proxy as proxy_server


@pytest.fixture(scope="module")
def proxy() -> Iterator[str]:
    with proxy_server() as url:
        yield url


def _report_through(proxy: str, live: LivePortal, tamper: bool) -> tuple[Any, list[Any]]:
    Proxy.tamper = tamper
    with chromium("js", extra_args=through(proxy)) as drv:
        drv.get(live.url + "/report")
        drv.find_element(By.ID, "what_happened").send_keys("Integrity check")
        drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
        if tamper:
            error = wait(drv, 60).until(
                lambda d: (
                    d.find_element(By.ID, "js-error").is_displayed()
                    and d.find_element(By.ID, "js-error").text
                )
            )
            outcome: Any = error
        else:
            outcome = shown_code(drv)
        return outcome, sent_requests(drv)


def test_a_changed_crypto_library_is_refused_and_nothing_is_sent(
    proxy: str, live: LivePortal
) -> None:
    error, requests = _report_through(proxy, live, tamper=True)
    assert error, "the page must say the report was not sent"
    assert not [r for r in requests if r["url"].endswith("/api/reports")]


def test_the_same_proxy_untouched_lets_the_report_through(proxy: str, live: LivePortal) -> None:
    code, requests = _report_through(proxy, live, tamper=False)
    assert len(code) == 24
    assert [r for r in requests if r["url"].endswith("/api/reports")]
