"""Alembic environment: runs against the engine handed over in the config."""

from alembic import context
from sqlmodel import SQLModel

import controlplane.store.tables  # noqa: F401 - registers the tables on SQLModel.metadata
from controlplane.store.db import writer

config = context.config
engine = config.attributes["engine"]

with writer(engine).begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
    )
    context.run_migrations()
