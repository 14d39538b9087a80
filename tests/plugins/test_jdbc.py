"""The PostgreSQL JDBC family runs real flows against a real PostgreSQL database.

Each task type runs through the engine (API, embedded worker) against the
source database of ``pg_source``; the password comes from a namespace secret
and must appear in no log line, output or error. The polling trigger's run
is in ``test_trigger_fires_a_run_with_the_rows``; its exactly-once mechanics
are in tests/services/test_polling_triggers.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from controlplane.plugins.jdbc.connection import parse_url
from controlplane.plugins.jdbc.statements import bind_names, split_statements
from controlplane.services.polling import PollingTriggers
from controlplane.store.tables import utcnow
from tests.plugins import pg_source
from tests.plugins.pg_source import PASSWORD, connection_yaml, put_password_secret, sql
from tests.services.test_engine import logs, put_flow, run, task_runs, wait_for_end

RUNS: dict[str, str] = {
    "io.kestra.plugin.jdbc.postgresql.Query": "test_query_fetches_one_row_all_rows_and_a_file",
    "io.kestra.plugin.jdbc.postgresql.Queries": "test_queries_run_in_one_transaction",
    "io.kestra.plugin.jdbc.postgresql.CopyIn": "test_copy_in_loads_a_file_of_the_execution",
}
# Polling trigger types are not task types; test_every_type_runs does not read this yet.
TRIGGER_RUNS: dict[str, str] = {
    "io.kestra.plugin.jdbc.postgresql.Trigger": "test_trigger_fires_a_run_with_the_rows",
}
NS = "jdbc.demo"


@pytest.fixture(scope="module", autouse=True)
def _source() -> Iterator[None]:
    pg_source.ensure_database()
    sql("DROP TABLE IF EXISTS people, ledger, loaded, loaded2, marks, jdbc_events")
    sql(
        "CREATE TABLE people (id int PRIMARY KEY, name text, born date, meta jsonb, "
        "tags text[], amount numeric, seen timestamptz, span interval, raw bytea)"
    )
    sql(
        "INSERT INTO people VALUES "
        "(1, 'Ada', '1815-12-10', '{\"lang\": \"en\"}', '{math,poetry}', 12.50, "
        "'2024-01-02 03:04:05+00', '1 day 02:03:04', '\\x0102'), "
        "(2, 'Grace', '1906-12-09', null, '{}', 3, null, null, null)"
    )
    sql("CREATE TABLE ledger (id serial PRIMARY KEY, note text UNIQUE)")
    sql("CREATE TABLE loaded (id int, city text, note text)")
    sql("CREATE TABLE loaded2 (id int, city text, note text)")
    sql("CREATE TABLE marks (note text)")
    yield
    sql("DROP TABLE IF EXISTS people, ledger, loaded, loaded2, marks, jdbc_events")


def _secret_nowhere(client: TestClient, execution: dict[str, Any]) -> None:
    body = client.get(f"/api/v1/executions/{execution['id']}").json()
    assert PASSWORD not in json.dumps(body)
    assert PASSWORD not in "\n".join(logs(client, execution["id"]))


def _outputs(execution: dict[str, Any], task: str) -> dict[str, Any]:
    return dict(task_runs(execution)[task]["outputs"])


def test_query_fetches_one_row_all_rows_and_a_file(client: TestClient) -> None:
    put_password_secret(client, NS)
    source = f"""\
id: query
namespace: {NS}
tasks:
  - id: one
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection_yaml()}    sql: SELECT * FROM people WHERE id = :id AND name <> '%:id'
    parameters:
      id: 1
    fetchType: FETCH_ONE
    timeZoneId: Europe/Paris
  - id: all
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection_yaml()}    sql: SELECT id, name FROM people ORDER BY id
    fetchType: FETCH
  - id: stored
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection_yaml()}    sql: SELECT id, name FROM people ORDER BY id
    fetchType: STORE
    fetchSize: 1
  - id: nothing
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection_yaml()}    sql: "UPDATE people SET name = name WHERE id = 2"
  - id: legacy_fetch
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection_yaml()}    sql: SELECT id FROM people ORDER BY id
    fetch: true
  - id: legacy_one
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection_yaml()}    sql: SELECT id FROM people ORDER BY id
    fetchOne: true
  - id: legacy_store
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection_yaml()}    sql: SELECT id FROM people ORDER BY id
    store: true
  - id: then_mark
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection_yaml()}    sql: SELECT count(*) AS marks FROM marks
    afterSQL: "INSERT INTO marks VALUES ('query-after')"
    fetchType: FETCH_ONE
  - id: say
    type: Log
    message: >-
      {{{{ outputs.one.row.name }}}} of {{{{ outputs.all.size }}}}:
      {{{{ outputs.all.rows[1].name }}}}
"""  # noqa: S608 - a flow in YAML, its SQL written by the test
    put_flow(client, source)
    execution = run(client, NS, "query")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    one = _outputs(execution, "one")
    assert one["size"] == 1
    assert one["row"] == {
        "id": 1,
        "name": "Ada",
        "born": "1815-12-10",
        "meta": {"lang": "en"},
        "tags": ["math", "poetry"],
        "amount": 12.5,
        "seen": "2024-01-02T04:04:05+01:00",  # timeZoneId: Paris is UTC+1 in January
        "span": "P0Y0M1DT2H3M4S",
        "raw": "AQI=",
    }
    assert _outputs(execution, "all") == {
        "rows": [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}],
        "size": 2,
    }
    stored = _outputs(execution, "stored")
    assert stored["size"] == 2
    lines = Path(stored["uri"]).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": 1, "name": "Ada"},
        {"id": 2, "name": "Grace"},
    ]
    assert _outputs(execution, "nothing") == {}
    assert _outputs(execution, "legacy_fetch") == {"rows": [{"id": 1}, {"id": 2}], "size": 2}
    assert _outputs(execution, "legacy_one") == {"row": {"id": 1}, "size": 1}
    assert Path(_outputs(execution, "legacy_store")["uri"]).read_text().count("\n") == 2
    # afterSQL runs after the query, in its transaction: the count saw no mark yet.
    assert _outputs(execution, "then_mark")["row"] == {"marks": 0}
    assert sql("SELECT note FROM marks") == [("query-after",)]
    assert "Ada of 2: Grace" in logs(client, execution["id"])
    _secret_nowhere(client, execution)


def test_query_refuses_two_statements_and_reports_errors_without_the_password(
    client: TestClient,
) -> None:
    put_password_secret(client, NS)
    source = f"""\
id: bad
namespace: {NS}
tasks:
  - id: two
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection_yaml()}    sql: "SELECT 1; SELECT 2"
    allowFailure: true
  - id: wrong
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection_yaml()}    sql: "SELECT no_such_column FROM people"
    allowFailure: true
  - id: tls_mode
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection_yaml()}    sql: SELECT 1
    sslMode: REQUIRE
    allowFailure: true
  - id: tls_flag
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection_yaml()}    sql: SELECT 1
    ssl: true
    allowFailure: true
  - id: nowhere
    type: io.kestra.plugin.jdbc.postgresql.Query
    url: jdbc:postgresql://127.0.0.1:1/none?connectTimeout=2
    username: postgres
    password: "{{{{ secret('PG_PASSWORD') }}}}"
    sql: SELECT 1
"""  # noqa: S608 - a flow in YAML, its SQL written by the test
    put_flow(client, source)
    execution = run(client, NS, "bad")
    assert execution["state"] == "FAILED"
    text = "\n".join(logs(client, execution["id"]))
    assert "Use the Queries task to run multiple statements" in text
    assert "no_such_column" in text
    assert "cannot connect to PostgreSQL" in text
    # The test server has no TLS: both tasks asked for it, and were refused.
    states = {task: row["state"] for task, row in task_runs(execution).items()}
    assert states["tls_mode"] == states["tls_flag"] == "WARNING"
    assert text.count("server does not support SSL") == 2
    _secret_nowhere(client, execution)


def test_queries_run_in_one_transaction(client: TestClient) -> None:
    put_password_secret(client, NS)
    source = f"""\
id: queries
namespace: {NS}
inputs:
  - {{id: note, type: STRING}}
tasks:
  - id: many
    type: io.kestra.plugin.jdbc.postgresql.Queries
{connection_yaml()}    sql: |
      INSERT INTO ledger (note) VALUES (:note);
      SELECT count(*) AS n FROM ledger WHERE note = :note;
      SELECT note FROM ledger ORDER BY id;
    parameters:
      note: "{{{{ inputs.note }}}}"
    fetchType: FETCH
    afterSQL: "INSERT INTO marks VALUES ('queries-after')"
"""  # noqa: S608 - a flow in YAML, its SQL written by the test
    put_flow(client, source)
    first = run(client, NS, "queries", note="a;b")
    assert first["state"] == "SUCCESS", logs(client, first["id"])
    assert _outputs(first, "many") == {
        "outputs": [
            {"rows": [{"n": 1}], "size": 1},
            {"rows": [{"note": "a;b"}], "size": 1},
        ]
    }
    # The INSERT breaks the unique note; the whole transaction rolls back.
    failing = source.replace("SELECT note FROM ledger ORDER BY id;", "SELECT 1/0;").replace(
        "INSERT INTO ledger (note) VALUES (:note);",
        "INSERT INTO ledger (note) VALUES ('rolled back');\n"
        "      INSERT INTO ledger (note) VALUES (:note);",
    )
    put_flow(client, failing)
    second = run(client, NS, "queries", note="new")
    assert second["state"] == "FAILED"
    assert "division by zero" in "\n".join(logs(client, second["id"]))
    assert sql("SELECT note FROM ledger ORDER BY id") == [("a;b",)]
    assert sql("SELECT count(*) FROM marks WHERE note = 'queries-after'") == [(1,)]
    _secret_nowhere(client, second)
    # Without a transaction, each statement commits on its own: the first one stays.
    put_flow(
        client, failing.replace("fetchType: FETCH", "fetchType: FETCH\n    transaction: false")
    )
    third = run(client, NS, "queries", note="kept")
    assert third["state"] == "FAILED"
    assert sql("SELECT note FROM ledger ORDER BY id") == [("a;b",), ("rolled back",), ("kept",)]


def test_queries_honour_fetch_modes_time_zone_and_tls(client: TestClient) -> None:
    put_password_secret(client, NS)
    two = "SELECT TIMESTAMPTZ '2024-01-02 03:04:05+00' AS t; SELECT 2 AS n"
    source = f"""\
id: queries_modes
namespace: {NS}
tasks:
  - id: fetch
    type: io.kestra.plugin.jdbc.postgresql.Queries
{connection_yaml()}    sql: "{two}"
    fetch: true
    timeZoneId: Asia/Tokyo
  - id: one
    type: io.kestra.plugin.jdbc.postgresql.Queries
{connection_yaml()}    sql: "{two}"
    fetchOne: true
    timeZoneId: UTC
  - id: stored
    type: io.kestra.plugin.jdbc.postgresql.Queries
{connection_yaml()}    sql: "{two}"
    store: true
    fetchSize: 1
  - id: tls
    type: io.kestra.plugin.jdbc.postgresql.Queries
{connection_yaml()}    sql: SELECT 1
    sslMode: REQUIRE
    ssl: true
    allowFailure: true
"""
    put_flow(client, source)
    execution = run(client, NS, "queries_modes")
    assert _outputs(execution, "fetch") == {
        "outputs": [
            {"rows": [{"t": "2024-01-02T12:04:05+09:00"}], "size": 1},
            {"rows": [{"n": 2}], "size": 1},
        ]
    }
    assert [o["row"] for o in _outputs(execution, "one")["outputs"]] == [
        {"t": "2024-01-02T03:04:05+00:00"},
        {"n": 2},
    ]
    stored = _outputs(execution, "stored")["outputs"]
    assert [json.loads(Path(o["uri"]).read_text()) for o in stored][1] == {"n": 2}
    assert task_runs(execution)["tls"]["state"] == "WARNING"
    assert "server does not support SSL" in "\n".join(logs(client, execution["id"]))
    _secret_nowhere(client, execution)


def test_copy_in_loads_a_file_of_the_execution(client: TestClient) -> None:
    put_password_secret(client, NS)
    source = f"""\
id: copy
namespace: {NS}
tasks:
  - id: make
    type: LocalFiles
    inputs:
      data.csv: |
        city|note|id
        Paris|a, b|1
        Lyon||2
    outputs: [data.csv]
  - id: load
    type: io.kestra.plugin.jdbc.postgresql.CopyIn
{connection_yaml()}    from: "{{{{ outputs.make.uris['data.csv'] }}}}"
    table: loaded
    columns: [city, note, id]
    format: CSV
    header: true
    delimiter: "|"
    nullString: ""
  - id: count
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection_yaml()}    sql: SELECT count(*) AS n, count(note) AS notes FROM loaded
    fetchType: FETCH_ONE
"""  # noqa: S608 - a flow in YAML, its SQL written by the test
    put_flow(client, source)
    execution = run(client, NS, "copy")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert _outputs(execution, "load") == {"rowCount": 2}
    assert _outputs(execution, "count")["row"] == {"n": 2, "notes": 1}
    assert sql("SELECT id, city, note FROM loaded ORDER BY id") == [
        (1, "Paris", "a, b"),
        (2, "Lyon", None),
    ]
    _secret_nowhere(client, execution)


def test_copy_in_honours_quoting_null_freeze_and_encoding_options(client: TestClient) -> None:
    put_password_secret(client, NS)
    source = f"""\
id: copy_options
namespace: {NS}
tasks:
  - id: make
    type: LocalFiles
    inputs:
      data.csv: |
        1,'a, b',
        2,'it\\'s',x
        3,café,''
    outputs: [data.csv]
  - id: load
    type: io.kestra.plugin.jdbc.postgresql.CopyIn
{connection_yaml()}    from: "{{{{ outputs.make.uris['data.csv'] }}}}"
    table: loaded2
    columns: [id, city, note]
    format: csv
    quote: "'"
    escape: "\\\\"
    forceNotNull: [note]
    forceNull: [note]
    encoding: LATIN1
  - id: tls
    type: io.kestra.plugin.jdbc.postgresql.CopyIn
{connection_yaml()}    from: "{{{{ outputs.make.uris['data.csv'] }}}}"
    table: loaded2
    sslMode: VERIFY_FULL
    ssl: true
    allowFailure: true
  - id: frozen
    type: io.kestra.plugin.jdbc.postgresql.CopyIn
{connection_yaml()}    from: "{{{{ outputs.make.uris['data.csv'] }}}}"
    table: loaded2
    format: CSV
    freeze: true
    allowFailure: true
"""
    put_flow(client, source)
    execution = run(client, NS, "copy_options")
    assert task_runs(execution)["load"]["state"] == "SUCCESS", logs(client, execution["id"])
    assert sql("SELECT id, city, note FROM loaded2 ORDER BY id") == [
        (1, "a, b", ""),  # unquoted empty: not NULL (forceNotNull)
        (2, "it's", "x"),  # the escape character before a quote
        (3, "cafÃ©", None),  # UTF-8 bytes read as LATIN1; quoted empty: NULL (forceNull)
    ]
    assert task_runs(execution)["frozen"]["state"] == "WARNING"
    assert task_runs(execution)["tls"]["state"] == "WARNING"
    text = "\n".join(logs(client, execution["id"]))
    assert "cannot perform COPY FREEZE" in text
    assert "server does not support SSL" in text


def test_copy_in_reads_only_files_of_its_execution(client: TestClient) -> None:
    source = f"""\
id: steal
namespace: {NS}
tasks:
  - id: load
    type: io.kestra.plugin.jdbc.postgresql.CopyIn
    url: {pg_source.JDBC_URL}
    username: postgres
    from: /etc/passwd
    table: loaded
"""
    put_flow(client, source)
    execution = run(client, NS, "steal")
    assert execution["state"] == "FAILED"
    assert "'/etc/passwd' is not a file of this execution" in "\n".join(
        logs(client, execution["id"])
    )


def test_trigger_fires_a_run_with_the_rows(client: TestClient, engine: Engine) -> None:
    data_dir = client.app.state.settings.data_dir  # type: ignore[attr-defined]
    put_password_secret(client, NS)
    sql("DROP TABLE IF EXISTS jdbc_events")
    sql("CREATE TABLE jdbc_events (id int PRIMARY KEY, kind text, done bool DEFAULT false)")
    source = f"""\
id: watch
namespace: {NS}
tasks:
  - id: each
    type: ForEach
    values: "{{{{ trigger.rows }}}}"
    tasks:
      - id: show
        type: Log
        message: "event {{{{ json(taskrun.value) }}}} of {{{{ trigger.size }}}}"
  - id: consume
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection_yaml(4)}    sql: UPDATE jdbc_events SET done = true WHERE NOT done
triggers:
  - id: new_events
    type: io.kestra.plugin.jdbc.postgresql.Trigger
{connection_yaml(4)}    sql: SELECT id, kind FROM jdbc_events WHERE NOT done ORDER BY id
    fetchType: FETCH
    interval: PT1H
"""  # noqa: S608 - a flow in YAML, its SQL written by the test
    put_flow(client, source)
    # The app's own polling loop may poll too; the fire key keeps the run single.
    poller = PollingTriggers(engine, data_dir)
    assert poller.run_pass(utcnow()) == 0  # no rows yet
    sql("INSERT INTO jdbc_events (id, kind) VALUES (1, 'signup'), (2, 'login')")
    poller.run_pass(utcnow() + timedelta(hours=2))
    items = client.get("/api/v1/executions", params={"namespace": NS, "flow_id": "watch"}).json()
    assert len(items) == 1
    execution = wait_for_end(client, items[0]["id"])
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert execution["trigger"]["size"] == 2
    assert execution["trigger"]["rows"] == [
        {"id": 1, "kind": "signup"},
        {"id": 2, "kind": "login"},
    ]
    text = logs(client, execution["id"])
    assert 'event {"id":1,"kind":"signup"} of 2' in text
    assert sql("SELECT count(*) FROM jdbc_events WHERE done") == [(2,)]
    _secret_nowhere(client, execution)


def test_jdbc_urls_and_statements_are_read_as_postgresql_reads_them() -> None:
    assert parse_url(
        "jdbc:postgresql://db.example:5433/shop?ApplicationName=x&sslmode=require"
    ) == {
        "host": "db.example",
        "port": "5433",
        "dbname": "shop",
        "application_name": "x",
        "sslmode": "require",
    }
    assert parse_url("jdbc:postgresql://h1,h2:6000/app?currentSchema=s") == {
        "host": "h1,h2",
        "port": "5432,6000",
        "dbname": "app",
        "options": "-c search_path=s",
    }
    assert parse_url("jdbc:postgresql:local") == {"host": "localhost", "dbname": "local"}
    assert parse_url("postgresql://u:p@h/d")["password"] == "p"  # noqa: S105 - a URL's part
    with pytest.raises(Exception, match="url parameter 'frobnicate' is not supported"):
        parse_url("jdbc:postgresql://h/d?frobnicate=1")
    with pytest.raises(Exception, match="PostgreSQL JDBC URL"):
        parse_url("jdbc:mysql://h/d")
    assert split_statements("SELECT ';' ; /* ; */ SELECT $x$;$x$; -- ;") == [
        "SELECT ';'",
        "/* ; */ SELECT $x$;$x$",
    ]
    assert bind_names("SELECT :a::int, ':a', 5 % 2, :b", {"a"}) == (
        "SELECT %(a)s::int, ':a', 5 %% 2, :b"
    )


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ("sql: SELECT 1", "fetchType NONE fetches no rows"),
        ("sql: SELECT 1\n    fetchType: STORE", "fetchType STORE is not supported on a trigger"),
        ("sql: SELECT 1\n    fetchType: FETCH\n    interval: PT0S", "must be a positive duration"),
        (
            "sql: SELECT 1\n    fetchType: FETCH\n    conditions:\n"
            "      - {type: ExecutionStatusCondition, in: [SUCCESS]}",
            "cannot be used on a polling trigger",
        ),
    ],
)
def test_trigger_specs_that_could_never_work_are_refused(trigger: str, message: str) -> None:
    source = f"""\
id: refused
namespace: {NS}
tasks:
  - {{id: t, type: Log, message: x}}
triggers:
  - id: watch
    type: io.kestra.plugin.jdbc.postgresql.Trigger
    url: {pg_source.JDBC_URL}
    {trigger}
"""
    with pytest.raises(InvalidFlowError, match=message):
        validate_flow(source)


def test_copy_in_refuses_options_postgresql_removed() -> None:
    source = f"""\
id: refused
namespace: {NS}
tasks:
  - id: load
    type: io.kestra.plugin.jdbc.postgresql.CopyIn
    url: {pg_source.JDBC_URL}
    from: x
    table: t
    oids: true
"""
    with pytest.raises(InvalidFlowError, match="oids is not supported"):
        validate_flow(source)
