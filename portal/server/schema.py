"""The server's schema: Alembic migrations under ``portal/server/migrations``.

A worker that finds the database already at the newest migration never imports
Alembic (with Mako and Pygments, 11 MiB of every worker's memory): migrations
are named ``NNNN_*.py`` with revision ``NNNN``, so the newest one is known from
the folder, and one SELECT says whether there is anything to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"


def newest() -> str:
    """The revision of the newest migration (its file name's number)."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def current(url: str) -> str | None:
    """The database's revision; None before the first migration."""
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return c.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None  # no alembic_version table yet
    finally:
        engine.dispose()


def upgrade(url: str) -> None:
    """Bring the schema to the newest migration."""
    if current(url) == newest():
        return
    from alembic import command

    command.upgrade(alembic_config(url), "head")
