"""DbtCLI builds a real dbt project (dbt-core with dbt-duckdb) through the engine.

The project is written by the flow itself (inputFiles): one model and two
schema tests, a DuckDB database in the working directory. ``dbt build`` runs
for real; the test reads the database dbt built, the stored run results and
the manifest kept in the key-value store.

The flow runs under the suite's default sandbox (bubblewrap here: uid 65534,
a clean environment, a private ``/dev/shm`` for dbt's multiprocessing lock).
dbt's start-up takes several seconds, so this is the family's one run.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from fastapi.testclient import TestClient

from tests.services.test_engine import logs, put_flow, run, task_runs

RUNS: dict[str, str] = {"io.kestra.plugin.dbt.cli.DbtCLI": "test_dbt_build_a_project"}

SOURCE = """\
id: dbt
namespace: demo
tasks:
  - id: build
    type: io.kestra.plugin.dbt.cli.DbtCLI
    projectDir: shop
    inputFiles:
      shop/dbt_project.yml: |
        name: shop
        version: "1.0"
        profile: shop
      shop/models/orders.sql: |
        select 1 as id, 'ada' as customer union all select 2, '{{ flow.id }}'
      shop/models/schema.yml: |
        version: 2
        models:
          - name: orders
            columns:
              - name: id
                tests: [unique, not_null]
    loadManifest:
      key: previous-manifest
      namespace: demo
    beforeCommands:
      - cat shop/target/manifest.json; echo
      - id -u
    profiles: |
      shop:
        target: dev
        outputs:
          dev:
            type: duckdb
            path: shop.duckdb
            threads: 1
    commands:
      - dbt build
      - echo "::{\\"outputs\\":{\\"built\\":true}}::"
    outputFiles: [shop.duckdb]
    logFormat: JSON
    engine: CORE
    parseRunResults: true
    storeManifest:
      key: shop-manifest
      namespace: demo
"""


def test_dbt_build_a_project(client: TestClient) -> None:
    # A manifest of an earlier run, which loadManifest writes where dbt's --state finds it.
    previous = {"metadata": {"marker": "from-the-kv-store"}, "nodes": {}}
    response = client.put("/api/v1/namespaces/demo/kv/previous-manifest", json={"value": previous})
    assert response.status_code == 201, response.text
    put_flow(client, SOURCE)
    execution = run(client, "demo", "dbt")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    outputs = task_runs(execution)["build"]["outputs"]
    assert outputs["vars"] == {"built": True}

    assert any("from-the-kv-store" in line for line in lines), lines
    assert "65534" in lines  # dbt ran as the sandbox user
    # dbt's JSON log events became plain log lines.
    assert any(line.startswith("Running with dbt=") for line in lines), lines
    assert any("Completed successfully" in line for line in lines)
    assert not any(line.startswith('{"data"') for line in lines)
    # Run results: one line per node, and the stored file.
    assert any(line.startswith("model.shop.orders: success in") for line in lines)
    assert sum(1 for line in lines if line.startswith("test.shop.") and ": pass in" in line) == 2
    results = json.loads(Path(outputs["outputFiles"]["run_results.json"]).read_text())
    assert {r["status"] for r in results["results"]} == {"success", "pass"}
    assert (
        "model.shop.orders"
        in json.loads(Path(outputs["outputFiles"]["manifest.json"]).read_text())["nodes"]
    )

    # The model dbt materialised, read from the database file the flow collected.
    with duckdb.connect(outputs["outputFiles"]["shop.duckdb"], read_only=True) as db:
        rows = db.execute("select id, customer from orders order by id").fetchall()
    assert rows == [(1, "ada"), (2, "dbt")]

    # storeManifest kept the manifest in the namespace's key-value store.
    stored = client.get("/api/v1/namespaces/demo/kv/shop-manifest")
    assert stored.status_code == 200, stored.text
    assert "model.shop.orders" in json.dumps(stored.json())
