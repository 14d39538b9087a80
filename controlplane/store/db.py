"""Engine creation, SQLite pragmas, sessions and migrations.

SQLite is the embedded default: WAL mode so readers never block the writer,
writers that take the write lock at BEGIN and a busy timeout so concurrent
writers queue instead of failing, readers that never take it, and foreign
keys on. PostgreSQL is reached through psycopg 3. Alembic migrations run at
start-up; the schema is never created any other way.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import Session

from controlplane.errors import StoreError
from controlplane.store import namespace_files as _namespace_files  # noqa: F401 - registers its table
from controlplane.store import polling as _polling  # noqa: F401 - registers its tables
from controlplane.store import trigger_states as _trigger_states  # noqa: F401 - registers its table

_MIGRATIONS = Path(__file__).parent / "migrations"


def normalize_url(url: str) -> str:
    """Point plain ``postgresql://`` URLs at psycopg 3, the driver we ship."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def create_engine(url: str) -> Engine:
    """An engine for ``url`` with the pragmas and pool settings Flowplane relies on."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        # No pre-ping: a file database has no connection to lose, and the ping
        # was a query per checkout on the hot path.
        engine = sa_create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa_create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, emit BEGIN (see the "begin" listener).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# The execution option that marks a connection as a writer's (see ``writer``).
_WRITES = "flowplane_writes"


def _sqlite_begin(connection: Connection) -> None:
    # pysqlite's own transaction handling defers BEGIN until the first write,
    # which lets two writers both read and then collide; BEGIN IMMEDIATE makes a
    # writer take the write lock up front, so writers queue instead. A reader
    # begins deferred: in WAL mode it reads a snapshot and never waits for the
    # lock (reads used to take it too, and starved the worker's writes).
    immediate = connection.get_execution_options().get(_WRITES, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def writer(engine: Engine) -> Engine:
    """``engine`` for a transaction that writes: on SQLite it takes the write lock at BEGIN.

    A plain ``Session(engine)`` is for reads only; every write goes through
    ``transaction``, which uses this.
    """
    if engine.dialect.name != "sqlite":
        return engine
    cached = _WRITERS.get(engine)
    if cached is None:
        cached = _WRITERS[engine] = engine.execution_options(**{_WRITES: True})
    return cached


_WRITERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs our migrations on ``engine``'s database."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration; safe to call on every start."""
    try:
        command.upgrade(alembic_config(engine), "head")
    except OperationalError as exc:
        raise StoreError(f"cannot migrate the database: {exc.orig}") from None


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error.

    SQLAlchemy errors leave this function as ``StoreError``; our own errors
    (conflicts, preconditions) pass through unchanged after the rollback.
    """
    with Session(writer(engine), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise StoreError(f"database error: {type(exc).__name__}") from exc
        except BaseException:
            session.rollback()
            raise


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
