"""The store runs on the database CI asked for, with the pragmas it relies on."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from controlplane.store.db import alembic_config
from tests.conftest import POSTGRES_URL


def test_runs_on_the_requested_database(engine: Engine) -> None:
    expected = "postgresql" if POSTGRES_URL else "sqlite"
    assert engine.dialect.name == expected


def test_sqlite_uses_wal_and_foreign_keys(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas do not apply to PostgreSQL")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_migrations_are_recorded(engine: Engine) -> None:
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert version == head
