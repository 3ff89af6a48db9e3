"""Accessibility checks run inside a real page: axe-core (from npm) and layout probes."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.harness.browsers import wait
from tests.harness.live import LivePortal

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.0, 2.1 and 2.2 at levels A and AA, plus axe's best practices.
# The reporter's pages that need nothing but a GET to reach.
PAGES = ["/", "/report", "/case", "/safety", "/no-such-page"]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


@cache
def axe_source() -> str:
    return AXE.read_text("utf-8")


def axe_violations(drv: WebDriver) -> list[dict[str, Any]]:
    """axe-core's violations on the current page, each with its rule and the nodes."""
    if not drv.execute_script("return typeof window.axe === 'object'"):
        drv.execute_script(axe_source())
    drv.set_script_timeout(60)
    result = drv.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const options = {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']};
        axe.run(document, options)
          .then((r) => done(r.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(' ') + ' :: ' + n.failureSummary)}))))
          .catch((e) => done([{id: 'axe-error', help: String(e), nodes: []}]));
        """,
        AXE_TAGS,
    )
    return list(result)


def horizontal_overflow(drv: WebDriver) -> list[str]:
    """Elements that stick out sideways, making the reader scroll in two directions."""
    return list(
        drv.execute_script(
            """
            const width = document.documentElement.clientWidth;
            const out = [];
            const scrolled = document.documentElement.scrollWidth;
            if (scrolled > width + 1) out.push('page scrolls sideways: ' + scrolled);
            for (const el of document.body.querySelectorAll('*')) {
              const r = el.getBoundingClientRect();
              if (!r.width || getComputedStyle(el).visibility === 'hidden') continue;
              if (el.closest('.skip-link')) continue;  // off-screen until focused, by design
              if (r.right > width + 1 || r.left < -1)
                out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                         ' spans ' + Math.round(r.left) + '..' + Math.round(r.right));
            }
            return out.slice(0, 10);
            """
        )
    )


def focus_is_visible(drv: WebDriver) -> dict[str, Any]:
    """The focused element and whether its focus indicator can be seen."""
    return dict(
        drv.execute_script(
            """
            const el = document.activeElement;
            const s = getComputedStyle(el);
            const width = parseFloat(s.outlineWidth) || 0;
            return {
              id: el.id, tag: el.tagName.toLowerCase(), name: el.getAttribute('name') || '',
              text: (el.textContent || '').trim().slice(0, 40),
              visible: s.outlineStyle !== 'none' && width >= 2,
            };
            """
        )
    )


def choose_language(drv: WebDriver, live: LivePortal, lang: str) -> None:
    """The way a reader does it: the switcher's plain link."""
    drv.get(live.url + "/")
    drv.find_element(By.CSS_SELECTOR, f'.language-switch a[lang="{lang}"]').click()
    wait(drv, 30).until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang)


def active_id(drv: WebDriver) -> str:
    return str(drv.execute_script("return document.activeElement.id"))
