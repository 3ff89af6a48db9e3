"""Fixtures: a real desk (real keys), and a portal app on a temp data dir.

With ``PORTAL_TEST_DATABASE=postgres`` (the second pass of ``make test``) every
portal the tests make stores into a fresh database on a real PostgreSQL server
the run starts itself, and only the tests that store through the portal run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
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
from tests.harness.postgres import Cluster, cluster
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


ON_POSTGRES = os.environ.get("PORTAL_TEST_DATABASE") == "postgres"
# Tests of the desk's own work, which use a portal only to make reports for it.
DESK_SIDE = frozenset(
    {
        "test_desk_team",
        "test_stats",
        "test_casefile",
        "test_tables",
        "test_referrals",
        "test_viewing",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, run what stores through the portal (the rest ran on SQLite)."""
    if not ON_POSTGRES:
        return
    keep = [
        i
        for i in items
        if "config" in getattr(i, "fixturenames", ())
        and i.path.stem not in DESK_SIDE  # the desk's own storage is SQLite, always
    ]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


@pytest.fixture(scope="session", autouse=True)
def _no_work_lines_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every portal a test makes leaves its work gate's line in /dev/shm, one small
    file per data dir that outlives the workers (work_gate.line_path); this test
    process's are removed once its tests are done (a run made over a thousand)."""
    yield
    from portal.server.web.work_gate import line_path

    base = tmp_path_factory.getbasetemp()
    for folder in (base, *base.rglob("*")):
        if folder.is_dir() and not folder.is_symlink():
            line_path(folder).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster | None]:
    """The run's PostgreSQL server, when the run is on PostgreSQL."""
    if not ON_POSTGRES:
        yield None
        return
    with cluster() as server:
        yield server


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database the portal's migrations made once (and nothing else: no
    keys, no sessions), copied into each test's data dir as PostgreSQL's runs copy
    theirs (``Cluster.new_database``): the portal still looks on start and finds
    nothing left to do, where running them took a third of making an app."""
    from portal.server import schema

    path = tmp_path_factory.mktemp("migrated") / "portal.sqlite"
    schema.upgrade(f"sqlite:///{path}")
    assert not path.with_name("portal.sqlite-wal").exists(), "the copy would miss the log"
    return path


@pytest.fixture
def config(
    tmp_path: Path, desk_home: Path, postgres: Cluster | None, migrated_sqlite: Path
) -> Config:
    data_dir = tmp_path / "data"
    env = {
        "PORTAL_DATA_DIR": str(data_dir),
        "PORTAL_KEYS": str(desk_home / keystore.ORG_FILE),
    }
    if postgres is not None:
        env["PORTAL_DATABASE_URL"] = postgres.new_database()
    else:
        data_dir.mkdir(mode=0o700)
        shutil.copyfile(migrated_sqlite, data_dir / "portal.sqlite")
        (data_dir / "portal.sqlite").chmod(0o600)
    base = load_config(env)
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
