"""The registry as users see it: ``flowplane plugins list|schema`` and ``/api/v1/plugins``."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from controlplane.cli import app
from controlplane.domain.tasktypes import TASK_TYPES


def test_cli_lists_every_registered_type() -> None:
    result = CliRunner().invoke(app, ["plugins", "list", "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)
    assert [e["type"] for e in entries] == sorted(TASK_TYPES)
    log = next(e for e in entries if e["type"] == "io.kestra.plugin.core.log.Log")
    assert log["family"] == "core"
    assert log["package"] == "flowplane"
    assert "Log" in log["aliases"]
    shell = next(e for e in entries if e["type"] == "io.kestra.plugin.scripts.shell.Commands")
    assert shell["sandbox"] is True
    assert "exitCode" in shell["outputs"]
    assert next(e for e in entries if e["type"].endswith("flow.If"))["flowable"] is True


def test_cli_prints_one_schema_by_alias_and_refuses_unknown() -> None:
    result = CliRunner().invoke(app, ["plugins", "schema", "kv.Set"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema["properties"]["type"]["enum"][0] == "io.kestra.plugin.core.kv.Set"
    assert {"key", "value", "overwrite"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    unknown = CliRunner().invoke(app, ["plugins", "schema", "kv.Sett"])
    assert unknown.exit_code == 1
    assert "did you mean io.kestra.plugin.core.kv.Set" in unknown.output


def test_api_lists_plugins_and_serves_schemas(client: TestClient) -> None:
    body = client.get("/api/v1/plugins").json()
    assert body["total"] == len(TASK_TYPES) == len(body["items"])
    assert {item["type"] for item in body["items"]} == set(TASK_TYPES)
    schema = client.get("/api/v1/plugins/If/schema")
    assert schema.status_code == 200
    assert {"condition", "then", "else"} <= set(schema.json()["properties"])
    missing = client.get("/api/v1/plugins/NoSuch/schema")
    assert missing.status_code == 404
    assert client.get("/api/v1/plugins", headers={"Authorization": ""}).status_code == 401


def test_kestra_older_names_are_aliases() -> None:
    result = CliRunner().invoke(app, ["plugins", "schema", "io.kestra.core.tasks.flows.If"])
    assert result.exit_code == 0, result.output
    names = json.loads(result.output)["properties"]["type"]["enum"]
    assert names[0] == "io.kestra.plugin.core.flow.If"
    assert "io.kestra.core.tasks.flows.If" in names
