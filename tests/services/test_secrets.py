"""Secrets are encrypted at rest, reach the task that asks, and appear nowhere else."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.services.test_engine import logs, put_flow, run

VALUE = "hunter2-Sup3rS3cret"
# The flow proves the task got the real value by its digest, so the value
# itself appears in no flow source.
DIGEST = hashlib.sha256(VALUE.encode()).hexdigest()[:16]
FLOW_TEMPLATE = """\
id: uses-secret
namespace: platform.ops
tasks:
  - id: shell
    type: shell.Commands
    env:
      TOKEN: "{{ secret('DB_PASSWORD') }}"
    commands:
      - 'echo "token is $TOKEN"'
      - 'test "$(printf %s "$TOKEN" | sha256sum | cut -c1-16)" = "DIGEST" && echo matched'
  - id: echo
    type: Return
    format: "again {{ secret('DB_PASSWORD') }}"
"""
FLOW = FLOW_TEMPLATE.replace("DIGEST", DIGEST)


def test_secret_reaches_the_task_and_nothing_else(
    client: TestClient, engine: Engine, tmp_path: Path
) -> None:
    url = "/api/v1/namespaces/platform.ops/secrets/DB_PASSWORD"
    created = client.put(url, json={"value": VALUE, "description": "ops db"})
    assert created.status_code == 201
    assert created.json()["version"] == 1
    assert client.put(url, json={"value": VALUE, "description": "ops db"}).json()["version"] == 1
    rotated = client.put(url, json={"value": VALUE + "x", "description": "ops db"}).json()
    assert rotated["version"] == 2
    client.put(url, json={"value": VALUE, "description": "ops db"})

    put_flow(client, FLOW)
    execution = run(client, "platform.ops", "uses-secret")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    lines = logs(client, execution["id"])
    assert "matched" in lines  # the real value reached the process
    assert "token is ******" in lines

    produced = [
        str(client.get(url).json()),
        str(client.get("/api/v1/namespaces/platform.ops/secrets").json()),
        str(client.get(f"/api/v1/executions/{execution['id']}").json()),
        str(lines),
    ]
    with engine.connect() as connection:
        for table in ("logs", "task_runs", "executions", "flow_revisions", "secrets"):
            rows = connection.execute(text(f"SELECT * FROM {table}")).fetchall()  # noqa: S608
            produced.append(str(rows))
    everything = "\n".join(produced)
    assert VALUE not in everything
    assert VALUE.encode().hex() not in everything
    assert (tmp_path / "identity.age").stat().st_mode & 0o077 == 0


def test_unknown_secret_fails_the_task_clearly(client: TestClient) -> None:
    put_flow(client, FLOW.replace("DB_PASSWORD", "MISSING"))
    execution = run(client, "platform.ops", "uses-secret")
    assert execution["state"] == "FAILED"
    assert any(
        "secret 'MISSING' is not available" in line for line in logs(client, execution["id"])
    )
