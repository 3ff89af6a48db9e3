"""Headless Chromium (Debian's chromium and chromium-driver) in the modes Tor Browser has.

- ``js``: JavaScript on (Standard);
- ``jitless``: no JIT and no WebAssembly (Safer), so libsodium runs its pure-JS build;
- ``nojs``: JavaScript off (Safest).

One more mode serves tools, not readers: ``scriptless`` keeps JavaScript on in
the browser but blocks every script of the portal, so a page renders exactly as
it does with JavaScript off (the pages use no ``<noscript>``) while a checker
such as axe-core can still run. Chromium runs no promise or timer callbacks
while JavaScript is off, so axe cannot run in ``nojs`` itself.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

MODES = ("js", "jitless", "nojs", "scriptless")


def chromium_paths() -> tuple[str, str]:
    browser = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return browser, driver


@contextmanager
def chromium(
    mode: str,
    *,
    width: int = 1000,
    height: int = 900,
    downloads: str | None = None,
    extra_args: tuple[str, ...] = (),
    prompts: dict[str, str] | None = None,
) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium with an empty profile, closed afterwards."""
    assert mode in MODES
    browser, driver_path = chromium_paths()
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-features=Translate,OptimizationHints,MediaRouter",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        *extra_args,
    ):
        options.add_argument(arg)
    if mode == "jitless":
        options.add_argument("--js-flags=--jitless")
    if mode == "nojs":
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    if prompts:
        options.set_capability("unhandledPromptBehavior", prompts)
    service = Service(executable_path=driver_path, log_output=os.devnull)
    drv = webdriver.Chrome(options=options, service=service)
    drv.set_page_load_timeout(60)
    if mode == "scriptless":
        drv.execute_cdp_cmd("Network.enable", {})
        drv.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/static/dist/*.js"]})
    if downloads:
        drv.execute_cdp_cmd(
            "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads}
        )
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def sent_requests(drv: webdriver.Chrome) -> list[dict[str, Any]]:
    """Every request the page sent since the last call, with its body (from DevTools)."""
    out = []
    for entry in drv.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") != "Network.requestWillBeSent":
            continue
        req = msg["params"]["request"]
        body = req.get("postData")
        if body is None and req.get("postDataEntries"):
            body = b"".join(
                base64.b64decode(e.get("bytes", "")) for e in req["postDataEntries"]
            ).decode("utf-8", "replace")
        if body is None and req.get("hasPostData"):
            data = drv.execute_cdp_cmd(
                "Network.getRequestPostData", {"requestId": msg["params"]["requestId"]}
            )
            body = data.get("postData")
        out.append({"url": req["url"], "method": req["method"], "body": body})
    return out


def wait(drv: webdriver.Chrome, seconds: float) -> WebDriverWait[webdriver.Chrome]:
    """A wait that rides over pages being replaced under it (no-JS form posts)."""
    return WebDriverWait(
        drv, seconds, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)
    )


def shown_code(drv: webdriver.Chrome, seconds: float = 90, selector: str = "[data-code]") -> str:
    """The case code once the page shows all 24 digits of it, as digits."""
    from portal.protocol.codes import normalise

    def digits(d: webdriver.Chrome) -> str | None:
        found = [e for e in d.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()]
        text = found[0].text.replace(" ", "") if found else ""
        return text if len(text) == 24 else None

    return normalise(str(WebDriverWait(drv, seconds).until(digits)))


def next_page(drv: webdriver.Chrome, action: Callable[[], object], seconds: float = 90) -> None:
    """Do ``action`` (a click or key press that posts a form) and wait until the
    page it leaves is gone, so no check can land on the old page's elements."""
    old = drv.find_element(By.TAG_NAME, "html")
    action()

    def left(_drv: webdriver.Chrome) -> bool:
        try:
            old.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            # Mid-navigation ChromeDriver says this instead of "stale".
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    WebDriverWait(drv, seconds).until(left)


def wait_for_download(folder: str, suffix: str, seconds: float = 30) -> str:
    """The path of the first finished download ending in ``suffix``."""
    import time
    from pathlib import Path

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        done = [p for p in Path(folder).glob(f"*{suffix}") if p.stat().st_size > 0]
        if done:
            return str(done[0])
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} download in {folder}")
