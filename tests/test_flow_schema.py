"""The flow dialect's JSON Schema: committed, current, and useful to an editor.

``flows-repo-template/flowplane.schema.json`` is what yaml-language-server
loads through the first line of every template flow; it must match the
registry (``flowplane schema flow`` regenerates it), accept the template's
flows and refuse what the validator refuses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from controlplane.cli import app
from controlplane.domain.tasktypes import TASK_TYPES
from controlplane.domain.tasktypes.schema import flow_schema, render_schema

TEMPLATE = Path(__file__).resolve().parents[1] / "flows-repo-template"
COMMITTED = TEMPLATE / "flowplane.schema.json"
MODELINE = "# yaml-language-server: $schema=../../flowplane.schema.json"


def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(COMMITTED.read_text(encoding="utf-8")))


def _errors(flow: dict[str, Any]) -> list[str]:
    return [error.message for error in _validator().iter_errors(flow)]


def test_committed_schema_matches_the_registry() -> None:
    # On failure: flowplane schema flow -o flows-repo-template/flowplane.schema.json
    assert COMMITTED.read_text(encoding="utf-8") == render_schema(flow_schema())


def test_cli_prints_the_same_schema(tmp_path: Path) -> None:
    target = tmp_path / "flow.schema.json"
    result = CliRunner().invoke(app, ["schema", "flow", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8")


def test_every_task_type_is_in_the_schema() -> None:
    schema = flow_schema()
    names = {
        name
        for definition in schema["$defs"].values()
        for name in definition.get("properties", {}).get("type", {}).get("enum", [])
    }
    assert set(TASK_TYPES) <= names
    assert {"Log", "If", "kv.Set"} <= names  # aliases complete in the editor too


@pytest.mark.parametrize("path", sorted((TEMPLATE / "flows").rglob("*.yaml")), ids=str)
def test_template_flows_point_at_the_schema_and_pass_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == MODELINE
    assert (path.parent / "../../flowplane.schema.json").resolve() == COMMITTED.resolve()
    assert _errors(yaml.safe_load(text)) == []


def test_schema_refuses_what_the_validator_refuses() -> None:
    flow = {"id": "f", "namespace": "demo", "tasks": [{"id": "a", "type": "Log", "message": "x"}]}
    assert _errors(flow) == []
    typo = {**flow, "tasks": [{"id": "a", "type": "Log", "mesage": "x"}]}
    assert _errors(typo) != []
    unknown = {**flow, "tasks": [{"id": "a", "type": "NoSuchTask", "message": "x"}]}
    assert _errors(unknown) != []
    nested = {
        **flow,
        "tasks": [{"id": "s", "type": "Sequential", "tasks": [{"id": "b", "type": "Log"}]}],
    }
    assert _errors(nested) != []  # the nested Log lacks its message
