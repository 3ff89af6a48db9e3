"""Fixtures: a real desk (real keys), and a portal app on a temp data dir."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.desk import keystore
from portal.desk.keystore import DeskKeys
from portal.protocol.organization import Organization
from portal.server.app import create_app, create_relay_app
from portal.server.config import Config, load_config
from tests.harness.live import fresh_desk_copy
from tests.harness.web import PASSPHRASE


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
def home(tmp_path: Path, desk_home: Path) -> Path:
    """A desk home of its own for one test: the same keys, nothing imported yet."""
    return fresh_desk_copy(desk_home, tmp_path / "desk")


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
