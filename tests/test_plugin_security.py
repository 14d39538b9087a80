"""Plugins that reach outside systems from the worker never use the server's own identity.

JDBC tasks and triggers connect from the worker (or the server's polling
loop): they must not log in with the server's libpq environment, its home
directory files or a Unix socket, nor reach Flowplane's own database. These
tests run real flows against a real PostgreSQL server (127.0.0.1:5432, trust
auth) on an app whose own database is PostgreSQL too (``OWN_DB``), whatever
database the rest of the suite uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from controlplane.api import create_app
from controlplane.plugins.api import TaskFailedError
from controlplane.plugins.jdbc.connection import isolated
from controlplane.services.own_database import ensure_not_server_database
from controlplane.services.polling import PollingTriggers
from controlplane.settings import Settings
from controlplane.store.db import migrate
from controlplane.store.tables import utcnow
from tests.conftest import ADMIN_TOKEN, bearer
from tests.plugins import pg_source
from tests.services.test_engine import logs, put_flow, run, task_runs

OWN_DB = "flowplane_b1_sec"
OWN_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{OWN_DB}"
NS = "security.jdbc"


@pytest.fixture(scope="module")
def own_engine() -> Iterator[Engine]:
    """Flowplane's own database: PostgreSQL, on the server the flows can reach."""
    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (OWN_DB,)).fetchone():
            admin.execute(f'CREATE DATABASE "{OWN_DB}"')
    engine = create_engine(OWN_URL)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    migrate(engine)
    pg_source.ensure_database()
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def own_client(
    own_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The API on ``own_engine``."""
    settings = Settings(
        database_url=str(own_engine.url),
        data_dir=tmp_path_factory.mktemp("data"),
        poll_sources=False,
        admin_token=ADMIN_TOKEN,
    )
    app = create_app(settings, engine=own_engine)
    with TestClient(app, headers=bearer(ADMIN_TOKEN)) as client:
        yield client


def _query_flow(flow_id: str, url: str, sql: str = "SELECT 1 AS one") -> str:
    return f"""\
id: {flow_id}
namespace: {NS}
tasks:
  - id: q
    type: io.kestra.plugin.jdbc.postgresql.Query
    url: "{url}"
    username: postgres
    sql: "{sql}"
    fetchType: FETCH_ONE
"""


@pytest.mark.parametrize(
    "host", ["localhost", "127.0.0.1", "[::1]", "0.0.0.0"]  # noqa: S104 - a flow's host
)
def test_a_query_cannot_reach_flowplanes_own_database(own_client: TestClient, host: str) -> None:
    flow_id = "own" + str(abs(hash(host)) % 1000)
    put_flow(
        own_client,
        _query_flow(flow_id, f"jdbc:postgresql://{host}:5432/{OWN_DB}", "SELECT * FROM api_tokens"),
    )
    execution = run(own_client, NS, flow_id)
    assert execution["state"] == "FAILED"
    text_ = "\n".join(logs(own_client, execution["id"]))
    assert "is Flowplane's own database; a flow may not connect to it" in text_


def test_another_database_on_the_same_server_is_reachable(own_client: TestClient) -> None:
    put_flow(own_client, _query_flow("other", pg_source.JDBC_URL))
    execution = run(own_client, NS, "other")
    assert execution["state"] == "SUCCESS", logs(own_client, execution["id"])


def test_the_trigger_cannot_poll_flowplanes_own_database(
    own_client: TestClient, own_engine: Engine
) -> None:
    data_dir = own_client.app.state.settings.data_dir  # type: ignore[attr-defined]
    source = f"""\
id: watch_own
namespace: {NS}
tasks:
  - id: log
    type: Log
    message: fired
triggers:
  - id: own
    type: io.kestra.plugin.jdbc.postgresql.Trigger
    url: jdbc:postgresql://127.0.0.1/{OWN_DB}
    username: postgres
    sql: SELECT name FROM api_tokens
    fetchType: FETCH
    interval: PT1H
"""
    put_flow(own_client, source)
    own_client.post("/api/v1/tokens", json={"name": "someone", "role": "reviewer"})
    poller = PollingTriggers(own_engine, data_dir)
    assert poller.run_pass(utcnow() + timedelta(hours=2)) == 0
    items = own_client.get("/api/v1/executions", params={"namespace": NS, "flow_id": "watch_own"})
    assert items.json() == []


@pytest.mark.parametrize(
    "url",
    [
        f"jdbc:postgresql://127.0.0.1/{OWN_DB}?host=/var/run/postgresql",
        "postgresql:///postgres",
        "jdbc:postgresql://h/postgres?host=@abstract",
    ],
)
def test_a_unix_socket_is_refused(own_client: TestClient, url: str) -> None:
    flow_id = "sock" + str(abs(hash(url)) % 1000)
    put_flow(own_client, _query_flow(flow_id, url))
    execution = run(own_client, NS, flow_id)
    assert execution["state"] == "FAILED"
    assert "url must name a network host: a Unix socket" in "\n".join(
        logs(own_client, execution["id"])
    )


def test_the_servers_libpq_environment_is_not_used(
    own_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before the fix libpq took these from the worker's environment: session
    # options, the server's password, its application name. (Values harmless to
    # the app's own engine, which reads the same environment.)
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=1234kB")
    monkeypatch.setenv("PGPASSWORD", "server-password")
    monkeypatch.setenv("PGAPPNAME", "server-app")
    put_flow(
        own_client,
        _query_flow(
            "env",
            pg_source.JDBC_URL,
            "SELECT current_setting('work_mem') AS mem, "
            "current_setting('application_name') AS app",
        ),
    )
    execution = run(own_client, NS, "env")
    assert execution["state"] == "SUCCESS", logs(own_client, execution["id"])
    row = task_runs(execution)["q"]["outputs"]["row"]
    assert row == {"mem": "4MB", "app": "flowplane"}


def test_pgservice_on_the_worker_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # PGSERVICE cannot be overridden by a connection parameter: refuse instead.
    monkeypatch.setenv("PGSERVICE", "flowplane")
    with pytest.raises(TaskFailedError, match="the worker's environment sets PGSERVICE"):
        isolated({"host": "db.example", "user": "app"})


def test_libpq_reads_no_file_of_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSFILE", "/root/.pgpass")
    monkeypatch.setenv("PGSSLKEY", "/root/.postgresql/postgresql.key")
    monkeypatch.setenv("PGHOSTADDR", "10.255.255.1")
    params = isolated({"host": "db.example", "user": "app", "dbname": "shop"})
    for name in ("passfile", "sslcert", "sslkey", "sslrootcert", "sslcrl"):
        assert params[name].startswith("/nonexistent/"), name
    assert params["hostaddr"] == ""
    assert params["password"] == ""
    assert params["gssencmode"] == "disable"
    # A flow naming its own files keeps them.
    assert isolated({"host": "h", "user": "u", "sslrootcert": "/etc/ca.pem"})["sslrootcert"] == (
        "/etc/ca.pem"
    )


def test_own_database_is_recognised_by_every_local_name(tmp_path: Path) -> None:
    engine = create_engine("postgresql+psycopg://flowplane@127.0.0.1/flowplane")
    for host in ("localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0", "::ffff:127.0.0.1"):  # noqa: S104
        with pytest.raises(TaskFailedError, match="Flowplane's own database"):
            ensure_not_server_database(engine, host, 5432, "flowplane")
    ensure_not_server_database(engine, "localhost", 5433, "flowplane")
    ensure_not_server_database(engine, "localhost", 5432, "shop")
    ensure_not_server_database(engine, "db.example", 5432, "flowplane")
    socket_engine = create_engine("postgresql+psycopg:///flowplane?host=/var/run/postgresql")
    with pytest.raises(TaskFailedError):
        ensure_not_server_database(socket_engine, "localhost", 5432, "flowplane")
    # A SQLite server has no address a flow could name.
    sqlite = create_engine(f"sqlite:///{tmp_path / 'flowplane.db'}")
    ensure_not_server_database(sqlite, "localhost", 5432, "flowplane")
