"""Subresource Integrity for the crypto library, in a real browser.

A proxy between Chromium and gunicorn changes one byte stream: the crypto
worker's script. The page must refuse to run it and send nothing; through the
same proxy, untouched, the report goes through, so the proxy is not the cause.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import pytest
from selenium.webdriver.common.by import By

from tests.harness.browsers import chromium, sent_requests, shown_code, wait
from tests.harness.live import LivePortal, loopback_server

HOP_BY_HOP = {"connection", "proxy-connection", "keep-alive", "transfer-encoding", "host"}


class _Proxy(BaseHTTPRequestHandler):
    tamper: ClassVar[bool] = False

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in HOP_BY_HOP | {"accept-encoding"}
        }
        request = urllib.request.Request(  # noqa: S310 - loopback only
            self.path, data=body, method=self.command, headers=headers
        )
        try:
            upstream = urllib.request.urlopen(request, timeout=60)  # noqa: S310
        except urllib.error.HTTPError as refused:
            upstream = refused
        data = upstream.read()
        if self.tamper and "/crypto-worker-" in self.path:
            data += b"\n;self.postMessage('tampered');\n"
        self.send_response(upstream.status)
        for key, value in upstream.headers.items():
            if key.lower() not in HOP_BY_HOP | {"content-length", "content-encoding"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _forward

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def proxy() -> Iterator[str]:
    with loopback_server(_Proxy) as url:
        yield url


def _report_through(proxy: str, live: LivePortal, tamper: bool) -> tuple[Any, list[Any]]:
    _Proxy.tamper = tamper
    args = (f"--proxy-server={proxy}", "--proxy-bypass-list=<-loopback>")
    with chromium("js", extra_args=args) as drv:
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
