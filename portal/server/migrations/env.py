"""Alembic environment: run migrations on the URL the portal configured."""

from __future__ import annotations

from alembic import context

from portal.common.db import make_engine
from portal.server.models import Base

url = context.config.get_main_option("sqlalchemy.url")
assert url is not None

engine = make_engine(url)
try:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()  # no connection left open to a database that was only migrated
