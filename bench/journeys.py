"""What a reporter waits for, in a real browser against a live portal: from the
click on Send to the code on screen (a short report), and from the click on
Open to the case shown with its new code. Chromium with and without JIT, and
Firefox ESR (Tor Browser's engine) at Tor Browser's Standard and Safer levels.

Wall-clock from the click as WebDriver sees it, median of a few runs (the
WebDriver round trips add a few tens of milliseconds).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from selenium.webdriver.common.by import By

from portal.protocol import codes
from tests.harness.browsers import shown_code, wait
from tests.harness.drivers import browser

RUNS = 3
LEVELS = (
    ("chromium", "js", "Chromium"),
    ("chromium", "jitless", "Chromium no JIT"),
    ("firefox", "standard", "Firefox Standard"),
    ("firefox", "safer", "Firefox Safer"),
)


def _scripted(drv: Any) -> None:
    wait(drv, 30).until(
        lambda d: d.execute_script("return document.documentElement.classList.contains('js')")
    )


def _new_code(drv: Any) -> bool:
    found = drv.find_elements(By.CSS_SELECTOR, "[data-new-code]")
    return bool(found) and found[0].is_displayed() and len(codes.ascii_digits(found[0].text)) == 24


def time_one(url: str, name: str, level: str) -> tuple[list[float], list[float]]:
    reports, openings = [], []
    with browser(name, level) as drv:
        for n in range(RUNS):
            drv.get(url + "/report")
            _scripted(drv)
            drv.find_element(By.ID, "what_happened").send_keys(f"bench report {n}")
            start = time.perf_counter()
            drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
            code = shown_code(drv, 300)
            reports.append(time.perf_counter() - start)
            drv.get(url + "/case")
            _scripted(drv)
            drv.find_element(By.ID, "code").send_keys(codes.format_code(code))
            start = time.perf_counter()
            drv.find_element(By.CSS_SELECTOR, "#case-form button[type=submit]").click()
            wait(drv, 300).until(_new_code)
            openings.append(time.perf_counter() - start)
            drv.execute_script("sessionStorage.clear()")
    return reports, openings


def run(url: str) -> dict[str, dict[str, float]]:
    out = {}
    for name, level, label in LEVELS:
        reports, openings = time_one(url, name, level)
        out[label] = {
            "report_s": statistics.median(reports),
            "open_s": statistics.median(openings),
        }
    return out


def report(figures: dict[str, dict[str, float]]) -> list[str]:
    title = f"reporter waits (s, median of {RUNS})"
    lines = [f"{title:<40}{'report':>10}{'open case':>12}"]
    for label, f in figures.items():
        lines.append(f"{label:<40}{f['report_s']:>10.2f}{f['open_s']:>12.2f}")
    lines.append("  targets at Safer (Firefox): report <= 2 s, case opening with new code <= 2 s")
    return lines
