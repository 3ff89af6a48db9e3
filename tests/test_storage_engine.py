"""The engine a run stores into is the one it names: SQLite in the first pass of
`make test`, a real PostgreSQL server in the second (PORTAL_TEST_DATABASE)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text

from portal.server import schema
from portal.server.config import Config
from tests.harness.loop import submit_report
from tests.harness.postgres import Cluster


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


def _read_then_write(db_url: str, writer: int, rounds: int) -> None:
    from portal.common.db import Database

    db = Database(db_url)
    for n in range(rounds):
        with db.transaction() as s:
            seen = s.execute(text("SELECT count(*) FROM t")).scalar_one()
            s.execute(text("INSERT INTO t (writer, n, seen) VALUES (:w, :n, :s)"),
                      {"w": writer, "n": n, "s": seen})  # fmt: skip
    db.engine.dispose()


def test_sqlite_writers_take_turns_across_threads_and_processes(tmp_path: Path) -> None:
    """Transactions that read and then write, from threads and from another process
    at once: with SQLite's own locking a reader turned writer fails ("database is
    locked") or sleeps; taking turns, every one commits and each saw all before it."""
    from portal.common.db import Database

    url = f"sqlite:///{tmp_path / 'turns.sqlite'}"
    db = Database(url)
    with db.transaction() as s:
        s.execute(text("CREATE TABLE t (writer INTEGER, n INTEGER, seen INTEGER)"))
    other = multiprocessing.get_context("spawn").Process(
        target=_read_then_write, args=(url, 99, 40)
    )
    other.start()
    threads = [threading.Thread(target=_read_then_write, args=(url, w, 40)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    other.join(120)
    assert other.exitcode == 0
    with db.reading() as s:
        rows = s.execute(text("SELECT seen FROM t ORDER BY seen")).scalars().all()
    assert rows == list(range(7 * 40))  # serial: each write saw exactly the ones before


def test_hosts_starting_together_migrate_once(config: Config, postgres: Cluster | None) -> None:
    """Several hosts start at once on a new PostgreSQL database: one migrates, the
    others wait for it and find nothing to do (without the lock, one of them fails
    creating a table that appeared meanwhile)."""
    if postgres is None:
        pytest.skip("SQLite serves one host: its data dir's start-up lock orders this")
    name = f"race_{os.getpid()}"
    postgres.psql(f'CREATE DATABASE "{name}"')
    url = postgres.url(name)
    spawn = multiprocessing.get_context("spawn")
    hosts = [spawn.Process(target=schema.upgrade, args=(url,)) for _ in range(4)]
    for host in hosts:
        host.start()
    for host in hosts:
        host.join(120)
    assert [h.exitcode for h in hosts] == [0, 0, 0, 0]
    version = postgres.psql("SELECT version_num FROM alembic_version", database=name)
    assert version == sorted(p.name[:4] for p in schema.MIGRATIONS.glob("versions/0*.py"))[-1]


def test_the_newest_migration_is_the_one_alembic_names_head() -> None:
    from alembic.script import ScriptDirectory

    assert (
        schema.newest() == ScriptDirectory.from_config(schema.alembic_config("")).get_current_head()
    )


def test_a_worker_on_a_current_schema_never_loads_alembic(app: Flask, config: Config) -> None:
    """Alembic, Mako and Pygments are 11 MiB of a worker: one that finds the schema
    current (every worker after the first start) does without them."""
    env = {
        **os.environ,
        "PORTAL_DATA_DIR": str(config.data_dir),
        "PORTAL_KEYS": str(config.keys_path),
        "PORTAL_DATABASE_URL": config.database_url,
    }
    probe = (
        "import sys; from portal import create_app; create_app(); "
        "print(sorted(m for m in ('alembic', 'mako', 'pygments') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert schema.current(config.database_url) == schema.newest()
