"""DuckDB Query and Queries through the engine, with the real DuckDB (the ``duckdb`` extra).

The flows load input files, query them, write output files, keep the database
and load it again in a later task; and they show the connection is held to the
task's own directory: reading a worker file, writing outside, or ``getenv``
fail the task.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.services.test_engine import logs, put_flow, run, task_runs

RUNS: dict[str, str] = {
    "io.kestra.plugin.jdbc.duckdb.Query": "test_query_fetches_stores_and_writes_files",
    "io.kestra.plugin.jdbc.duckdb.Queries": "test_queries_one_result_per_statement",
}

ORDERS = "id,customer,total\\n1,ada,10.5\\n2,bob,4\\n3,ada,2.25\\n"


def test_query_fetches_stores_and_writes_files(client: TestClient) -> None:
    source = f"""\
id: duck
namespace: demo
tasks:
  - id: files
    type: LocalFiles
    inputs:
      orders.csv: "{ORDERS}"
    outputs: [orders.csv]
  - id: one
    type: io.kestra.plugin.jdbc.duckdb.Query
    inputFiles:
      orders.csv: "{{{{ outputs.files.uris['orders.csv'] }}}}"
      extra.csv: "id,customer,total\\n4,cy,1\\n"
    sql: |
      CREATE TABLE orders AS
        SELECT * FROM read_csv_auto('{{{{ workingDir }}}}/orders.csv', header=True)
        UNION ALL SELECT * FROM read_csv_auto('{{{{ workingDir }}}}/extra.csv', header=True);
      COPY (SELECT customer, sum(total) AS total FROM orders GROUP BY customer ORDER BY 1)
        TO '{{{{ outputFiles.totals }}}}' (HEADER, DELIMITER ',');
      SELECT count(*) AS orders, sum(total) AS total, DATE '2024-05-01' AS day FROM orders;
    outputFiles: [totals]
    outputDbFile: true
    fetchType: FETCH_ONE
  - id: all
    type: io.kestra.plugin.jdbc.duckdb.Query
    url: "jdbc:duckdb:"
    databaseUri: "{{{{ outputs.one.databaseUri }}}}"
    sql: SELECT id, customer FROM orders WHERE total > 2 ORDER BY id
    fetchType: FETCH
    fetchSize: 2
  - id: zone
    type: io.kestra.plugin.jdbc.duckdb.Query
    sql: SELECT TIMESTAMP '2024-05-01 10:00:00' AS at
    timeZoneId: Europe/Paris
    fetchType: FETCH_ONE
  - id: store
    type: jdbc.duckdb.Query
    databaseUri: "{{{{ outputs.one.databaseUri }}}}"
    sql: SELECT id, total FROM orders ORDER BY id
    fetchType: STORE
  - id: say
    type: Log
    message: "{{{{ outputs.one.row.orders }}}} orders, {{{{ outputs.all.size }}}} above 2"
"""  # noqa: S608 - a flow's YAML, not SQL built from input
    put_flow(client, source)
    execution = run(client, "demo", "duck")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    outputs = {k: v["outputs"] for k, v in task_runs(execution).items()}

    one = outputs["one"]
    assert one["row"] == {"orders": 4, "total": 17.75, "day": "2024-05-01"}
    assert one["size"] == 1
    assert Path(one["outputFiles"]["totals"]).read_text() == (
        "customer,total\nada,12.75\nbob,4.0\ncy,1.0\n"
    )
    # The kept database opens with DuckDB itself.
    with duckdb.connect(one["databaseUri"], read_only=True) as db:
        assert db.execute("SELECT count(*) FROM orders").fetchone() == (4,)

    assert outputs["all"] == {
        "rows": [
            {"id": 1, "customer": "ada"},
            {"id": 2, "customer": "bob"},
            {"id": 3, "customer": "ada"},
        ],
        "size": 3,
    }
    # fetchSize 2 fetched the three rows in two batches; timeZoneId zoned a naive timestamp.
    assert outputs["zone"]["row"] == {"at": "2024-05-01T10:00:00+02:00"}
    stored = outputs["store"]
    assert stored["size"] == 4
    first = Path(stored["uri"]).read_text().splitlines()[0]
    assert json.loads(first) == {
        "id": 1,
        "total": 10.5,
    }
    assert "4 orders, 3 above 2" in lines


def test_queries_one_result_per_statement(client: TestClient) -> None:
    source = """\
id: ducks
namespace: demo
tasks:
  - id: many
    type: io.kestra.plugin.jdbc.duckdb.Queries
    url: "jdbc:duckdb:"
    inputFiles:
      extra.csv: "n\\n100\\n"
    sql: |
      CREATE TABLE t AS SELECT range AS n FROM range(5);
      SELECT count(*) AS c FROM t;
      UPDATE t SET n = n * 10;
      SELECT n FROM t ORDER BY n DESC LIMIT 2;
      COPY (SELECT * FROM read_csv_auto('{{ workingDir }}/extra.csv')) TO '{{ outputFiles.copy }}';
      SELECT TIMESTAMP '2024-05-01 10:00:00' AS at;
    outputFiles: [copy]
    outputDbFile: true
    fetchType: FETCH
    fetchSize: 1
    timeZoneId: UTC
    transaction: false
  - id: reuse
    type: io.kestra.plugin.jdbc.duckdb.Queries
    databaseUri: "{{ outputs.many.databaseUri }}"
    sql: SELECT max(n) AS top FROM t
    fetchType: FETCH_ONE
  - id: atomic
    type: io.kestra.plugin.jdbc.duckdb.Queries
    allowFailure: true
    outputDbFile: true
    sql: |
      CREATE TABLE kept (a INT);
      INSERT INTO kept VALUES (1);
      SELECT * FROM missing_table;
"""
    put_flow(client, source)
    execution = run(client, "demo", "ducks")
    lines = logs(client, execution["id"])
    runs = task_runs(execution)
    many = runs["many"]["outputs"]
    assert many["outputs"] == [
        {"rows": [{"c": 5}], "size": 1},
        {"rows": [{"n": 40}, {"n": 30}], "size": 2},
        {"rows": [{"at": "2024-05-01T10:00:00+00:00"}], "size": 1},
    ]
    assert Path(many["outputFiles"]["copy"]).read_text() == "n\n100\n"
    assert runs["reuse"]["outputs"]["outputs"] == [{"row": {"top": 40}, "size": 1}]
    # One transaction: the failing statement fails the task, naming DuckDB's error.
    assert runs["atomic"]["state"] == "WARNING"
    assert any("missing_table" in line for line in lines), lines


def test_sql_is_held_to_the_tasks_directory(client: TestClient, tmp_path: Path) -> None:
    secret = tmp_path / "server.key"
    secret.write_text("AGE-SECRET-KEY-1")
    outside = tmp_path / "written.csv"
    cases = {
        "read": f"SELECT * FROM read_text('{secret}')",  # noqa: S608 - the attack under test
        "write": f"COPY (SELECT 1) TO '{outside}'",
        "env": "SELECT getenv('HOME')",
        "unlock": "SET enable_external_access = true",
        "install": "INSTALL httpfs",
        "relative": "SELECT * FROM read_text('notes.txt')",
    }
    tasks = "\n".join(
        f"  - {{id: {name}, type: io.kestra.plugin.jdbc.duckdb.Query, allowFailure: true, "
        f'fetchType: FETCH, sql: "{sql}"}}'
        for name, sql in cases.items()
    )
    put_flow(client, f"id: duck-jail\nnamespace: demo\ntasks:\n{tasks}\n")
    execution = run(client, "demo", "duck-jail")
    lines = "\n".join(logs(client, execution["id"]))
    runs = task_runs(execution)
    assert {name: runs[name]["state"] for name in cases} == dict.fromkeys(cases, "WARNING")
    assert "AGE-SECRET-KEY-1" not in lines
    assert not outside.exists()
    assert "file system operations are disabled by configuration" in lines
    assert "the configuration has been locked" in lines
    assert "write '{{ workingDir }}/<file>' for the task's files" in lines


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("url: 'jdbc:duckdb:/var/lib/data.db'", "a database file on the worker"),
        ("communityExtensions: [ion]", "communityExtensions is not supported"),
    ],
)
def test_unsupported_properties_are_refused(extra: str, message: str) -> None:
    source = f"""\
id: duck-refused
namespace: demo
tasks:
  - id: q
    type: io.kestra.plugin.jdbc.duckdb.Query
    sql: SELECT 1
    {extra}
"""
    with pytest.raises(InvalidFlowError, match=message):
        validate_flow(source)
