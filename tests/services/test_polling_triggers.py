"""Polling triggers fire each key exactly once, contain their failures and keep secrets.

The triggers are real plugin types: ``io.kestra.plugin.jdbc.postgresql.Trigger``
against the source database of ``tests/plugins/pg_source.py`` and
``io.flowplane.plugin.git.Trigger`` against a repository made with ``git``.
The app's own polling loop is off here (``scheduler: false``); each test
drives ``PollingTriggers.run_pass`` with the times it needs, so nothing sleeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from structlog.testing import capture_logs

from controlplane.api import create_app
from controlplane.services.polling import LOOP_NAME, PollingTriggers
from controlplane.settings import Settings
from controlplane.store import trigger_states
from controlplane.store.db import transaction
from controlplane.store.polling import PollingFireRow
from controlplane.store.tables import ExecutionRow, utcnow
from tests.conftest import ADMIN_TOKEN, bearer
from tests.plugins import pg_source
from tests.plugins.git_repos import commit, make_repo
from tests.plugins.pg_source import PASSWORD, connection_yaml, put_password_secret, sql
from tests.services.test_engine import put_flow, wait_for_end

NS = "polling.demo"


@pytest.fixture(scope="module", autouse=True)
def _table() -> Iterator[None]:
    pg_source.ensure_database()
    sql("DROP TABLE IF EXISTS poll_jobs")
    sql("CREATE TABLE poll_jobs (id int PRIMARY KEY, name text, done bool DEFAULT false)")
    yield
    sql("DROP TABLE IF EXISTS poll_jobs")


@pytest.fixture
def quiet(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    """The API and a worker, without the app's own scheduler and polling loop."""
    sql("DELETE FROM poll_jobs")
    settings = Settings(
        database_url=str(engine.url),
        data_dir=tmp_path,
        poll_sources=False,
        scheduler=False,
        admin_token=ADMIN_TOKEN,
    )
    with TestClient(create_app(settings, engine=engine), headers=bearer(ADMIN_TOKEN)) as client:
        put_password_secret(client, NS)
        yield client


def poller(client: TestClient) -> PollingTriggers:
    """A polling loop of its own (a second server, as far as the database can tell)."""
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return PollingTriggers(engine, client.app.state.settings.data_dir)  # type: ignore[attr-defined]


def runs(engine: Engine, flow_id: str) -> list[ExecutionRow]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(ExecutionRow)
                .where(col(ExecutionRow.flow_id) == flow_id)
                .order_by(col(ExecutionRow.created_at))
            ).all()
        )


def fires(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(PollingFireRow)).one())


def jobs_flow(flow_id: str = "jobs", extra: str = "", sql_text: str = "") -> str:
    query = sql_text or "SELECT id, name FROM poll_jobs WHERE NOT done ORDER BY id"
    return f"""\
id: {flow_id}
namespace: {NS}
tasks:
  - id: say
    type: Log
    message: "{{{{ trigger.size }}}} jobs"
triggers:
  - id: jobs
    type: io.kestra.plugin.jdbc.postgresql.Trigger
{connection_yaml()}    sql: "{query}"
    fetchType: FETCH
    interval: PT1M
{extra}"""


def race(pollers: list[PollingTriggers], now: datetime) -> list[int]:
    """Run one pass of each poller at once; how many runs each started."""
    start = threading.Barrier(len(pollers))
    results = [0] * len(pollers)

    def one(index: int) -> None:
        start.wait()
        results[index] = pollers[index].run_pass(now)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(pollers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_new_row_fires_one_run_even_with_two_pollers_racing(
    quiet: TestClient, engine: Engine
) -> None:
    put_flow(quiet, jobs_flow())
    first, second = poller(quiet), poller(quiet)
    now = utcnow()
    with capture_logs() as logged:
        assert race([first, second], now) == [0, 0]  # nothing to do yet
    said = [e["message"] for e in logged if e["event"] == "polling_trigger_log"]
    assert said == ["Found '0' rows", "Found '0' rows"]
    sql("INSERT INTO poll_jobs (id, name) VALUES (1, 'build')")
    later = now + timedelta(minutes=2)
    assert sorted(race([first, second], later)) == [0, 1]
    assert len(runs(engine, "jobs")) == 1
    assert fires(engine) == 1
    # The same rows on the next poll are the same key: nothing new starts.
    assert race([first, second], later + timedelta(minutes=2)) == [0, 0]
    # A new row changes the result: one more run, with both rows.
    sql("INSERT INTO poll_jobs (id, name) VALUES (2, 'test')")
    assert sum(race([first, second], later + timedelta(minutes=4))) == 1
    started = runs(engine, "jobs")
    assert [r.trigger["size"] for r in started] == [1, 2]
    assert started[1].trigger["rows"] == [{"id": 1, "name": "build"}, {"id": 2, "name": "test"}]
    assert started[1].trigger["id"] == "jobs"
    for execution in started:
        assert wait_for_end(quiet, execution.id)["state"] == "SUCCESS"


def test_rows_seen_again_after_the_query_came_back_empty_fire_again(
    quiet: TestClient, engine: Engine
) -> None:
    put_flow(quiet, jobs_flow())
    polling, now = poller(quiet), utcnow()
    sql("INSERT INTO poll_jobs (id, name) VALUES (1, 'build')")
    assert polling.run_pass(now) == 1
    sql("UPDATE poll_jobs SET done = true")  # the flow consumed its rows
    assert polling.run_pass(now + timedelta(minutes=2)) == 0
    sql("UPDATE poll_jobs SET done = false")  # the very same row is pending again
    assert polling.run_pass(now + timedelta(minutes=4)) == 1
    assert polling.run_pass(now + timedelta(minutes=6)) == 0
    assert len(runs(engine, "jobs")) == 2


def test_a_trigger_polls_at_its_interval_and_gives_its_inputs_and_labels(
    quiet: TestClient, engine: Engine
) -> None:
    extra = "    inputs:\n      who: robot\n    labels:\n      team: data\n    logLevel: INFO\n"
    source = jobs_flow(extra=extra).replace(
        "tasks:", "inputs:\n  - {id: who, type: STRING}\ntasks:", 1
    )
    put_flow(quiet, source)
    polling, now = poller(quiet), utcnow()
    with capture_logs() as logged:
        assert polling.run_pass(now) == 0
    # The poll's own DEBUG line ("Found '0' rows") is below the trigger's logLevel.
    assert not [e for e in logged if e["event"] == "polling_trigger_log"]
    sql("INSERT INTO poll_jobs (id, name) VALUES (1, 'build')")
    assert polling.run_pass(now + timedelta(seconds=30)) == 0  # PT1M not yet passed
    assert polling.run_pass(now + timedelta(seconds=61)) == 1
    (execution,) = runs(engine, "jobs")
    assert execution.inputs == {"who": "robot"}
    assert execution.labels["team"] == "data"


def test_a_broken_trigger_backs_off_alone_and_its_error_is_masked(
    quiet: TestClient, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The database named is the secret: the server's error quotes it back.
    missing = f"{pg_source.JDBC_URL.rsplit('/', 1)[0]}/{{{{ secret('PG_PASSWORD') }}}}"
    put_flow(quiet, jobs_flow("broken").replace(pg_source.JDBC_URL, f'"{missing}"'))
    # Not under tmp_path: that is the server's data directory, which the trigger refuses.
    repo = make_repo(tmp_path_factory.mktemp("remote") / "repo")
    sha = commit(repo, {"a.txt": "1"}, "one")
    put_flow(
        quiet,
        f"""\
id: healthy
namespace: {NS}
tasks:
  - {{id: say, type: Log, message: "{{{{ trigger.commit }}}}"}}
triggers:
  - id: push
    type: io.flowplane.plugin.git.Trigger
    url: file://{repo}
    interval: PT1M
""",
    )
    polling, now = poller(quiet), utcnow()
    with capture_logs() as logged:
        assert polling.run_pass(now) == 1
    assert [r.trigger["commit"] for r in runs(engine, "healthy")] == [sha]
    failures = [e for e in logged if e["event"] == "polling_trigger_failed"]
    assert len(failures) == 1
    assert failures[0]["flow"] == f"{NS}/broken"
    assert "cannot connect to PostgreSQL" in failures[0]["error"]
    assert 'database "******" does not exist' in failures[0]["error"]
    assert PASSWORD not in json.dumps(logged, default=str)
    assert polling.failures((NS, "broken", "jobs")) == 1
    # Backing off: the broken trigger is not polled at its interval, the healthy one is.
    second = commit(repo, {"a.txt": "2"}, "two")
    with capture_logs() as logged:
        assert polling.run_pass(now + timedelta(seconds=61)) == 1
    assert not [e for e in logged if e["event"] == "polling_trigger_failed"]
    assert polling.failures((NS, "broken", "jobs")) == 1
    assert [r.trigger["commit"] for r in runs(engine, "healthy")] == [sha, second]


def test_secrets_in_fired_rows_are_masked(quiet: TestClient, engine: Engine) -> None:
    put_flow(
        quiet,
        jobs_flow(sql_text="SELECT name, '{{ secret('PG_PASSWORD') }}' AS token FROM poll_jobs"),
    )
    sql("INSERT INTO poll_jobs (id, name) VALUES (1, 'build')")
    assert poller(quiet).run_pass(utcnow()) == 1
    (execution,) = runs(engine, "jobs")
    assert execution.trigger["rows"] == [{"name": "build", "token": "******"}]
    body = quiet.get(f"/api/v1/executions/{execution.id}").json()
    assert PASSWORD not in json.dumps(body)


def test_disabled_switched_off_and_stopped_triggers_do_not_fire(
    quiet: TestClient, engine: Engine
) -> None:
    put_flow(quiet, jobs_flow("off", "    disabled: true\n"))
    put_flow(quiet, jobs_flow("toggled"))
    with transaction(engine) as session:
        trigger_states.put_state(session, (NS, "toggled", "jobs"), disabled=True, actor="test")
    never = '    conditions:\n      - {type: Expression, expression: "{{ 1 == 2 }}"}\n'
    put_flow(quiet, jobs_flow("unless", never))
    put_flow(quiet, jobs_flow("once", "    stopAfter: [SUCCESS]\n"))
    polling, now = poller(quiet), utcnow()
    sql("INSERT INTO poll_jobs (id, name) VALUES (1, 'build')")
    assert polling.run_pass(now) == 1  # only "once"
    assert [len(runs(engine, f)) for f in ("off", "toggled", "unless", "once")] == [0, 0, 0, 1]
    (first,) = runs(engine, "once")
    assert wait_for_end(quiet, first.id)["state"] == "SUCCESS"
    sql("INSERT INTO poll_jobs (id, name) VALUES (2, 'test')")
    # New rows, but a run of this revision ended SUCCESS: stopAfter stops the trigger.
    assert polling.run_pass(now + timedelta(minutes=2)) == 0
    assert len(runs(engine, "once")) == 1


def test_the_server_runs_the_polling_loop_and_readiness_watches_it(client: TestClient) -> None:
    registry = client.app.state.loops  # type: ignore[attr-defined]
    assert LOOP_NAME in registry.names()
    assert registry.get(LOOP_NAME).is_alive()
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
