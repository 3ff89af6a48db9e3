"""Either browser at one of its levels, for a test written for both.

Chromium stands for Tor Browser's levels with its modes (``js``, ``jitless``,
``nojs``); Firefox ESR, Tor Browser's engine, runs the levels themselves
(``standard``, ``safer``, ``safest``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.harness.browsers import chromium
from tests.harness.firefox import AnyDriver, firefox

# Every way a test runs a page: Chromium's modes and Tor Browser's levels in Firefox ESR.
EVERY_LEVEL = [
    ("chromium", "js"),
    ("chromium", "jitless"),
    ("chromium", "nojs"),
    ("firefox", "standard"),
    ("firefox", "safer"),
    ("firefox", "safest"),
]

# Each Firefox level as the Chromium mode that stands for it.
FIREFOX_LEVELS = {"standard": "js", "safer": "jitless", "safest": "nojs"}


def mode_of(name: str, level: str) -> str:
    """The Chromium mode a browser and level amount to: js, jitless or nojs."""
    return FIREFOX_LEVELS.get(level, level) if name == "firefox" else level


@contextmanager
def browser(name: str, level: str, *, width: int = 1000, height: int = 900) -> Iterator[AnyDriver]:
    if name == "chromium":
        with chromium(level, width=width, height=height) as drv:
            yield drv
    else:
        with firefox(level, width=width, height=height) as ff:
            yield ff
