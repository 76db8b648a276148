"""Alembic environment: runs on the engine handed over by gateway.db.migrate."""
from __future__ import annotations

from alembic import context

from gateway.db import ALL_METADATA

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=ALL_METADATA, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
