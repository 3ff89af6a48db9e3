"""Fixtures for end-to-end tests: one live gunicorn per module."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.harness.live import LivePortal, live_portal, loopback_server


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


class _Elsewhere(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>Elsewhere</title><p>Weather today</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[str]:
    """A harmless site on 127.0.0.1, where quick exit leads in these tests."""
    with loopback_server(_Elsewhere) as url:
        yield url


@pytest.fixture(scope="module")
def exit_live(
    tmp_path_factory: pytest.TempPathFactory, desk_home: Path, elsewhere: str
) -> Iterator[LivePortal]:
    """A portal whose Quick exit leads to the ``elsewhere`` site, to follow it there."""
    env = {"PORTAL_QUICK_EXIT_URL": elsewhere + "/weather"}
    with live_portal(
        tmp_path_factory.mktemp("exit"), desk_home / "organization.json", extra_env=env
    ) as portal:
        yield portal
