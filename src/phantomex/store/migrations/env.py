"""Alembic environment: runs on the engine handed over by ``phantomex.store.db.migrate``."""

from alembic import context
from sqlalchemy import Engine

from phantomex.store import models  # the whole schema: every feature's tables

engine: Engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=models.Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
