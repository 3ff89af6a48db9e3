"""Alembic environment: run migrations on the URL the portal configured."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from portal.common.db import make_engine
from portal.server.models import Base

url = context.config.get_main_option("sqlalchemy.url")
assert url is not None

MIGRATING = 0x504F5254_4D494752  # "PORTMIGR": one advisory lock for every host's start

engine = make_engine(url)
try:
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Hosts starting together take turns: the first migrates, the rest find it done.
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATING})
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()  # no connection left open to a database that was only migrated
