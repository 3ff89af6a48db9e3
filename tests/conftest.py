"""Fixtures: a real desk (real keys), and a portal app on a temp data dir."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app, create_relay_app
from portal.config import Config, load_config
from portal.desk import keystore
from portal.desk.keystore import DeskKeys
from portal.organization import Organization
from portal.pow import proof_for

PASSPHRASE = "correct horse battery staple"
CSRF = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture(scope="session")
def desk_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A desk made by the real key ceremony (at the cheap passphrase cost)."""
    home = tmp_path_factory.mktemp("desk")
    keystore.init(home, PASSPHRASE, "Test Rights Network", cost="interactive")
    return home


@pytest.fixture(scope="session")
def desk_keys(desk_home: Path) -> DeskKeys:
    return keystore.unlock(desk_home, PASSPHRASE)


@pytest.fixture(scope="session")
def org(desk_keys: DeskKeys) -> Organization:
    return desk_keys.organization


@pytest.fixture
def config(tmp_path: Path, desk_home: Path) -> Config:
    base = load_config(
        {
            "PORTAL_DATA_DIR": str(tmp_path / "data"),
            "PORTAL_KEYS": str(desk_home / keystore.ORG_FILE),
        }
    )
    return replace(
        base,
        max_envelope_bytes=64 * 1024,
        max_request_bytes=128 * 1024,
        branding_dir=None,
        pow_bits=2,  # real proofs of work, cheap to make in a test (see test_pow.py)
    )


@pytest.fixture
def app(config: Config) -> Flask:
    return create_app(config)


@pytest.fixture
def relay_app(config: Config, app: Flask) -> Flask:
    """The relay staff's app on the same data dir as ``app`` (its own listener in production)."""
    return create_relay_app(config)


@pytest.fixture
def relay(relay_app: Flask) -> FlaskClient:
    return relay_app.test_client()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    # Not `with app.test_client()`: a preserved request context would share `g`
    # (and flask-wtf's cached token) with every other client in the test.
    return app.test_client()


def csrf_token(client: FlaskClient, path: str = "/report") -> str:
    page = client.get(path).get_data(as_text=True)
    match = CSRF.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def api_post(client: FlaskClient, path: str, body: Any, page: str = "/report") -> Any:
    """POST JSON as the browser does: with the page's CSRF token and, where the
    route asks for one, a solved proof of work."""
    headers = {"X-CSRFToken": csrf_token(client, page)}
    if path in PAID_ROUTES:
        offer = client.post("/api/pow", headers=headers).get_json()
        body = {**body, "pow": proof_for(offer)}
    return client.post(path, json=body, headers=headers)


PAID_ROUTES = ("/api/reports", "/api/uploads", "/api/case/message")


def files_containing(root: Path, needle: bytes) -> list[Path]:
    """Every file under root whose bytes contain needle (database and WAL included)."""
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]
