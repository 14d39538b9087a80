"""The PostgreSQL database the JDBC tasks and triggers of the tests query (not Flowplane's own).

``FLOWPLANE_TEST_JDBC_DATABASE`` names it (default ``flowplane_h4_src``) on the
server at 127.0.0.1:5432 (trust auth, user postgres, as in CI); it is created
when missing. A server that cannot be reached fails the tests that need it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

HOST = "127.0.0.1"
PORT = 5432
DATABASE = os.environ.get("FLOWPLANE_TEST_JDBC_DATABASE", "flowplane_h4_src")
JDBC_URL = f"jdbc:postgresql://{HOST}:{PORT}/{DATABASE}"
# Trust auth ignores passwords, so a secret can be passed and checked for leaks.
PASSWORD = "pg-secret-h4-value-7731"  # noqa: S105 - a test value, not a secret


def ensure_database() -> None:
    """Create the source database if it is missing."""
    try:
        with psycopg.connect(
            host=HOST, port=PORT, user="postgres", dbname="postgres", autocommit=True
        ) as admin:
            exists = admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if exists is None:
                admin.execute(f'CREATE DATABASE "{DATABASE}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"the JDBC tests need PostgreSQL at {HOST}:{PORT}: {exc}")


@contextmanager
def connect() -> Iterator[psycopg.Connection[Any]]:
    """A connection to the source database, committing on exit."""
    with psycopg.connect(host=HOST, port=PORT, user="postgres", dbname=DATABASE) as connection:
        yield connection


def sql(statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement on the source database; its rows (empty without a result)."""
    with connect() as connection:
        cursor = connection.execute(statement, params or None)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def put_password_secret(client: TestClient, namespace: str) -> None:
    """Store the database password as the namespace's ``PG_PASSWORD`` secret."""
    response = client.put(
        f"/api/v1/namespaces/{namespace}/secrets/PG_PASSWORD", json={"value": PASSWORD}
    )
    assert response.status_code in {200, 201}, response.text


def connection_yaml(indent: int = 4) -> str:
    """The url/username/password properties of a JDBC task or trigger."""
    pad = " " * indent
    return (
        f"{pad}url: {JDBC_URL}\n"
        f"{pad}username: postgres\n"
        f"{pad}password: \"{{{{ secret('PG_PASSWORD') }}}}\"\n"
    )
