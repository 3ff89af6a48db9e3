"""Fixtures for end-to-end tests: one live gunicorn per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.live import LivePortal, live_portal


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "firefox: drives a real headless Firefox ESR (Tor Browser's base) too"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            callspec = getattr(item, "callspec", None)
            if callspec is not None and callspec.params.get("browser") == "firefox":
                item.add_marker(pytest.mark.firefox)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, desk_home: Path) -> Iterator[LivePortal]:
    with live_portal(tmp_path_factory.mktemp("live"), desk_home / "organization.json") as portal:
        yield portal
