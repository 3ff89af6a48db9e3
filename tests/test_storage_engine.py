"""The engine a run stores into is the one it names: SQLite in the first pass of
`make test`, a real PostgreSQL server in the second (PORTAL_TEST_DATABASE)."""

from __future__ import annotations

import os

from flask import Flask
from sqlalchemy import text

from portal.server.config import Config
from tests.harness.loop import submit_report


def test_the_portal_stores_in_the_engine_the_run_names(app: Flask, config: Config) -> None:
    wanted = "postgresql" if os.environ.get("PORTAL_TEST_DATABASE") == "postgres" else "sqlite"
    submit_report(app.test_client(), "MARKER-engine")
    engine = app.extensions["portal"].db.engine
    assert engine.dialect.name == wanted
    with engine.connect() as conn:
        if wanted == "postgresql":
            assert "PostgreSQL" in conn.execute(text("SELECT version()")).scalar_one()
            assert not list(config.data_dir.glob("*.sqlite"))
        assert conn.execute(text("SELECT count(*) FROM mailboxes")).scalar_one() == 1
