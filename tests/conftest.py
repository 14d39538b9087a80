"""Shared fixtures: a real database (temp SQLite, or PostgreSQL when asked) and the API.

``FLOWPLANE_TEST_DATABASE_URL`` selects PostgreSQL. When it is set but the
server cannot be reached, database tests are *skipped* (and reported as
skipped), never silently passed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from controlplane.api import create_app
from controlplane.settings import Settings
from controlplane.store.db import create_engine, migrate, writer
from controlplane.store.tables import SQLModel

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "kestra-valids"
POSTGRES_URL = os.environ.get("FLOWPLANE_TEST_DATABASE_URL")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests that touch the database carry the `database` marker, so the
    # PostgreSQL pass of CI can select exactly them with `-m database`.
    for item in items:
        if "engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.database)


def _own_database(url: str) -> str:
    """``url``, or under pytest-xdist a database of this worker's own beside it (made if missing).

    Each worker empties and migrates its database, so two workers never share one.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    server, _, name = url.rpartition("/")
    own = f"{name}_{worker}"
    admin = create_engine(f"{server}/postgres").execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": own}
            ).first()
            if exists is None:
                connection.execute(text(f'CREATE DATABASE "{own}"'))
    finally:
        admin.dispose()
    return f"{server}/{own}"


@pytest.fixture(scope="session")
def _database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if POSTGRES_URL:
        try:
            engine = create_engine(_own_database(POSTGRES_URL))
        except OperationalError as exc:
            pytest.skip(f"PostgreSQL at FLOWPLANE_TEST_DATABASE_URL is unreachable: {exc.orig}")
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except OperationalError as exc:
            pytest.skip(f"PostgreSQL at FLOWPLANE_TEST_DATABASE_URL is unreachable: {exc.orig}")
        # Start from an empty schema so the migrations themselves are tested.
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    else:
        engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'flowplane.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(_database: Engine) -> Iterator[Engine]:
    """A migrated database, emptied after each test."""
    yield _database
    with writer(_database).begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(table.delete())


ADMIN_TOKEN = "fpt_test-admin-token"  # noqa: S105 - a fixture value, not a secret


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    """The API on the test database, with its data dir (identity, git cache) in tmp."""
    # The Git poller stays off: tests sync sources explicitly, and a background
    # sync would race with them.
    settings = Settings(
        database_url=str(engine.url),
        data_dir=tmp_path,
        poll_sources=False,
        admin_token=ADMIN_TOKEN,
    )
    app = create_app(settings, engine=engine)
    with TestClient(app, headers=bearer(ADMIN_TOKEN)) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def token_headers(
    client: TestClient, name: str, role: str = "reviewer", namespaces: tuple[str, ...] = ("*",)
) -> dict[str, str]:
    """Create a token through the API (as admin); its Authorization header.

    The token's name is the identity recorded as actor, so a test names it
    after the person (four-eyes compares it with the commit's author).
    """
    response = client.post(
        "/api/v1/tokens", json={"name": name, "role": role, "namespaces": list(namespaces)}
    )
    assert response.status_code == 201, response.text
    return bearer(response.json()["token"])


@pytest.fixture
def corpus() -> Path:
    """The folder of real Kestra flows."""
    if not CORPUS.is_dir():
        pytest.fail(f"the Kestra corpus is missing at {CORPUS}; clone with ../shared beside it")
    return CORPUS
