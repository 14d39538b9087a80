"""No silent ignores: every accepted property is in docs/compatibility.md, honoured or refused.

The three tables (``## Task properties``, ``## Trigger properties``, ``## Flow
properties``) hold one row per property. This test walks the pydantic models
(every registered task type, every trigger type, the flow) and checks the
tables against them both ways; an ``honoured`` row must name a test that
exists, and a ``refused`` row's value must make validation fail with the
documented message naming the property.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from controlplane.domain import triggers
from controlplane.domain.spec import Flow
from controlplane.domain.tasktypes import TASK_TYPES, TaskBase, canonical_type
from controlplane.domain.tasktypes.base import FlowableBase
from controlplane.domain.tasktypes.scripts import ShellCommands
from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "compatibility.md"
STATUSES = {"honoured", "refused", "not honoured"}

# Accepted and not honoured, because corpus flows use them (refusing would make
# those flows invalid). Each needs executor or spec work; the docs say which.
# Honouring one means changing its row and removing it here.
KNOWN_GAPS = {
    ("flow", "revision"),
}

# The four script types share one private base; its fields are the family's.
_SCRIPT_BASE = ShellCommands.__mro__[2]
TASK_FAMILIES: dict[str, type[BaseModel]] = {
    "every script task": _SCRIPT_BASE,
    "every flowable task": FlowableBase,
    "every task": TaskBase,
}
TRIGGER_TYPES: dict[str, type[BaseModel]] = {
    "Schedule": triggers.Schedule,
    "Webhook": triggers.Webhook,
    "Flow": triggers.FlowTrigger,
}
TRIGGER_FAMILIES: dict[str, type[BaseModel]] = {"every trigger": triggers.Schedule.__mro__[1]}

_LOG = {"id": "inner", "type": "Log", "message": "m"}
# The smallest valid task of each type, to which a refused property is added.
MINIMAL_TASKS: dict[str, dict[str, Any]] = {
    "argo.Dag": {"tasks": [{"task": _LOG}]},
    "argo.Loop": {"items": [1], "tasks": [_LOG]},
    "argo.Retry": {"limit": 1, "tasks": [_LOG]},
    "git.PushFlows": {"url": "https://example.invalid/repo.git"},
    "git.SyncFlows": {"url": "https://example.invalid/repo.git", "targetNamespace": "probe"},
    "argocd.apps.Sync": {"server": "argocd.example", "token": "t", "application": "a"},
    "argocd.apps.Status": {"server": "argocd.example", "token": "t", "application": "a"},
    "notifications.slack.SlackIncomingWebhook": {"url": "http://h.invalid", "messageText": "m"},
    "notifications.slack.SlackExecution": {"url": "http://h.invalid"},
    "notifications.teams.TeamsIncomingWebhook": {"url": "http://h.invalid", "payload": "{}"},
    "notifications.teams.TeamsExecution": {"url": "http://h.invalid"},
    "notifications.discord.DiscordIncomingWebhook": {"url": "http://h.invalid", "payload": "{}"},
    "notifications.discord.DiscordExecution": {"url": "http://h.invalid"},
    "notifications.mail.MailSend": {"host": "h", "from": "a@example.com", "to": "b@example.com"},
    "openai.ChatCompletion": {"apiKey": "k", "model": "m", "prompt": "p"},
    "grafana.loki.Query": {"url": "http://h.invalid", "query": '{job="a"}'},
    "grafana.loki.QueryRange": {"url": "http://h.invalid", "query": '{job="a"}'},
    "compress.ArchiveCompress": {"from": {"a.txt": "/f"}, "algorithm": "ZIP"},
    "compress.ArchiveDecompress": {"from": "/f", "algorithm": "ZIP"},
    "terraform.cli.TerraformCLI": {"commands": ["terraform version"]},
    "ansible.cli.AnsibleCLI": {"commands": ["ansible --version"]},
    "dbt.cli.DbtCLI": {"commands": ["dbt --version"]},
    "kubectl.Apply": {"spec": "{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}"},
    "kubectl.Get": {"resourceType": "pods"},
    "kubectl.Delete": {"resourceType": "pods", "resourcesNames": ["p"]},
    "s3.Upload": {"bucket": "b", "from": "/f", "key": "k"},
    "s3.Download": {"bucket": "b", "key": "k"},
    "s3.List": {"bucket": "b"},
    "s3.Delete": {"bucket": "b", "key": "k"},
    "jdbc.duckdb.Query": {"sql": "SELECT 1"},
    "jdbc.duckdb.Queries": {"sql": "SELECT 1"},
    "serdes.csv.CsvToIon": {"from": "/f"},
    "serdes.csv.IonToCsv": {"from": "/f"},
    "serdes.json.JsonToIon": {"from": "/f"},
    "serdes.json.IonToJson": {"from": "/f"},
    "jdbc.postgresql.Query": {"url": "jdbc:postgresql://localhost/db", "sql": "SELECT 1"},
    "jdbc.postgresql.Queries": {"url": "jdbc:postgresql://localhost/db", "sql": "SELECT 1"},
    "jdbc.postgresql.CopyIn": {
        "url": "jdbc:postgresql://localhost/db",
        "from": "data.csv",
        "table": "t",
    },
    "git.Clone": {"url": "https://example.invalid/repo.git"},
    "Log": {"message": "m"},
    "Return": {},
    "Echo": {"format": "f"},
    "Fail": {},
    "Sleep": {"duration": "PT1S"},
    "OutputValues": {},
    "Labels": {"labels": {"a": "b"}},
    "Resume": {},
    "log.Fetch": {},
    "state.Get": {},
    "state.Set": {},
    "state.Delete": {},
    "kv.Set": {"key": "k", "value": "v"},
    "kv.Get": {"key": "k"},
    "kv.Delete": {"key": "k"},
    "LocalFiles": {},
    "Sequential": {"tasks": [_LOG]},
    "Parallel": {"tasks": [_LOG]},
    "If": {"condition": "{{ true }}", "then": [_LOG]},
    "Switch": {"value": "a", "cases": {"a": [_LOG]}},
    "ForEach": {"values": [1], "tasks": [_LOG]},
    "EachSequential": {"value": [1], "tasks": [_LOG]},
    "EachParallel": {"value": [1], "tasks": [_LOG]},
    "Dag": {"tasks": [{"task": _LOG}]},
    "Subflow": {"namespace": "demo", "flowId": "other"},
    "Pause": {},
    "AllowFailure": {"tasks": [_LOG]},
    "WorkingDirectory": {"tasks": [_LOG]},
    "WaitFor": {"condition": "{{ true }}", "tasks": [_LOG]},
    "http.Request": {"uri": "http://example.invalid"},
    "shell.Commands": {"commands": ["true"]},
    "shell.Script": {"script": "true"},
    "python.Commands": {"commands": ["python -V"]},
    "python.Script": {"script": "pass"},
    "http.Download": {"uri": "http://example.invalid/f.csv"},
    "storage.Write": {"content": "c"},
    "storage.Concat": {"files": ["/f"]},
    "storage.Split": {"from": "/f", "rows": 1},
    "storage.Size": {"uri": "/f"},
    "storage.Delete": {"uri": "/f"},
    "storage.PurgeCurrentExecutionFiles": {},
    "storage.DeduplicateItems": {"from": "/f", "expr": "{{ k }}"},
    "storage.FilterItems": {"from": "/f", "filterCondition": "{{ k }}"},
    "Assert": {"conditions": ["{{ true }}"]},
    "execution.Count": {"namespaces": ["demo"], "startDate": "{{ now() }}", "expression": "x"},
    "trigger.Toggle": {"trigger": "t"},
}
MINIMAL_TRIGGERS: dict[str, dict[str, Any]] = {
    "Schedule": {"cron": "* * * * *"},
    "Webhook": {"key": "k"},
    "Flow": {},
}


@dataclass(frozen=True)
class Row:
    """One line of a property table."""

    scope: str
    prop: str
    status: str
    proof: str
    value: str


def table(section: str, text: str | None = None) -> list[Row]:
    """The rows of the table under ``## <section>`` in docs/compatibility.md."""
    text = DOC.read_text(encoding="utf-8") if text is None else text
    marker = f"\n## {section}\n"
    assert marker in text, f"docs/compatibility.md has no section {section!r}"
    body = text.split(marker, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in body.splitlines() if line.startswith("|")]
    rows = []
    for line in lines[2:]:  # the header and its separator
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 5, f"a row needs 5 cells: {line}"
        scope, prop, status, proof, value = cells
        rows.append(Row(scope, prop.strip("`"), status, proof.strip("`"), value.strip("`")))
    return rows


def field_names(model: type[BaseModel]) -> set[str]:
    """The model's properties as flows spell them (aliases where Kestra's name differs)."""
    return {info.alias or name for name, info in model.model_fields.items()}


def task_model(scope: str) -> type[BaseModel] | None:
    """The task model or family a row's scope names."""
    if scope in TASK_FAMILIES:
        return TASK_FAMILIES[scope]
    full = canonical_type(scope)
    return TASK_TYPES[full] if full else None


def trigger_model(scope: str) -> type[BaseModel] | None:
    """The trigger model or family a row's scope names."""
    return TRIGGER_TYPES.get(scope) or TRIGGER_FAMILIES.get(scope)


def flow_model(scope: str) -> type[BaseModel] | None:
    """The flow model, for the scope ``flow``."""
    return Flow if scope == "flow" else None


def proof_exists(reference: str) -> bool:
    """Whether ``path::name`` is a top-level test function of an existing file."""
    path, _, name = reference.partition("::")
    file = ROOT / path
    if not name or not path.startswith("tests/") or not file.is_file():
        return False
    tree = ast.parse(file.read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        for node in tree.body
    )


def audit(
    rows: list[Row],
    resolve: Any,
    concrete: dict[str, type[BaseModel]],
    families: dict[str, type[BaseModel]],
) -> list[str]:
    """Every disagreement between ``rows`` and the models, as readable lines.

    ``concrete`` maps a name to each model whose every property needs a row;
    ``families`` are base models whose rows cover their subclasses.
    """
    problems: list[str] = []
    by_key: dict[tuple[type[BaseModel], str], Row] = {}
    for row in rows:
        model = resolve(row.scope)
        if model is None:
            problems.append(f"{row.scope}: not a known type or family")
            continue
        if (model, row.prop) in by_key:
            problems.append(f"{row.scope}.{row.prop}: listed twice")
        by_key[model, row.prop] = row
        problems.extend(_row_problems(row, model))
    for name, model in concrete.items():
        for prop in sorted(field_names(model)):
            owners = [model, *(f for f in families.values() if issubclass(model, f))]
            if not any((owner, prop) in by_key for owner in owners):
                problems.append(f"{name}.{prop}: missing from the table")
    return problems


def _row_problems(row: Row, model: type[BaseModel]) -> list[str]:
    """What is wrong with one row on its own."""
    where = f"{row.scope}.{row.prop}"
    problems = []
    if row.prop not in field_names(model):
        problems.append(f"{where}: no such property")
    if row.status not in STATUSES:
        problems.append(f"{where}: unknown status {row.status!r}")
    if row.status == "honoured" and not proof_exists(row.proof):
        problems.append(f"{where}: no test {row.proof!r}")
    if row.status == "refused" and not (row.proof and row.value):
        problems.append(f"{where}: a refusal needs its message and a value")
    return problems


def _task_types() -> dict[str, type[BaseModel]]:
    return {model.TYPE: model for model in TASK_TYPES.values()}


def test_task_table_matches_every_task_type() -> None:
    rows = table("Task properties")
    assert audit(rows, task_model, _task_types(), TASK_FAMILIES) == []


def test_trigger_table_matches_every_trigger_type() -> None:
    rows = table("Trigger properties")
    assert audit(rows, trigger_model, TRIGGER_TYPES, TRIGGER_FAMILIES) == []


def test_flow_table_matches_the_flow_model() -> None:
    rows = table("Flow properties")
    assert audit(rows, flow_model, {"flow": Flow}, {}) == []


def test_not_honoured_rows_are_exactly_the_known_gaps() -> None:
    gaps = {
        (row.scope, row.prop)
        for section in ("Task properties", "Trigger properties", "Flow properties")
        for row in table(section)
        if row.status == "not honoured"
    }
    assert gaps == KNOWN_GAPS


def test_the_audit_catches_a_missing_row_a_stale_row_and_a_broken_reference() -> None:
    rows = table("Task properties")
    log_level = next(r for r in rows if (r.scope, r.prop) == ("every task", "logLevel"))
    without = [r for r in rows if r is not log_level]
    assert "Log.logLevel: missing from the table" in "\n".join(
        audit(without, task_model, {"Log": TASK_TYPES[log_level_type()]}, TASK_FAMILIES)
    )
    stale = [*rows, Row("Log", "colour", "honoured", log_level.proof, "")]
    assert "Log.colour: no such property" in audit(stale, task_model, {}, TASK_FAMILIES)
    broken = [*without, replace(log_level, proof="tests/services/test_engine.py::test_nothing")]
    assert any("no test" in p for p in audit(broken, task_model, {}, TASK_FAMILIES))


def log_level_type() -> str:
    """The full name of the Log task."""
    full = canonical_type("Log")
    assert full is not None
    return full


# --- refused rows: validation fails, naming the property ---------------------------


def _source(flow: dict[str, Any]) -> str:
    return yaml.safe_dump(flow, sort_keys=False)


def _task(alias: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {"id": "probe", "type": alias, **MINIMAL_TASKS[alias], **extra}


def _flow(tasks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": "probe", "namespace": "demo", "tasks": tasks, **extra}


def _aliases_of(model: type[BaseModel]) -> list[str]:
    return [
        alias for alias in MINIMAL_TASKS if issubclass(TASK_TYPES[canonical_type(alias)], model)
    ]


def refused_cases() -> list[tuple[str, Row, dict[str, Any]]]:
    """(id, row, flow without the property) for every type each refused row covers."""
    cases: list[tuple[str, Row, dict[str, Any]]] = []
    for row in table("Task properties"):
        model = task_model(row.scope)
        if row.status != "refused" or model is None:
            continue
        cases.extend(
            (f"{alias}.{row.prop}", row, _flow([_task(alias, {})])) for alias in _aliases_of(model)
        )
    for row in table("Trigger properties"):
        model = trigger_model(row.scope)
        if row.status != "refused" or model is None:
            continue
        for kind, trigger_type in TRIGGER_TYPES.items():
            if issubclass(trigger_type, model):
                trigger = {"id": "probe", "type": kind, **MINIMAL_TRIGGERS[kind]}
                flow = _flow([_LOG], triggers=[trigger])
                cases.append((f"{kind}.{row.prop}", row, flow))
    cases.extend(
        (f"flow.{row.prop}", row, _flow([_LOG]))
        for row in table("Flow properties")
        if row.status == "refused"
    )
    return cases


def _with_property(flow: dict[str, Any], row: Row) -> dict[str, Any]:
    value = yaml.safe_load(row.value)
    if "triggers" in flow:
        return {**flow, "triggers": [{**flow["triggers"][0], row.prop: value}]}
    if row.scope == "flow":
        return {**flow, row.prop: value}
    return {**flow, "tasks": [{**flow["tasks"][0], row.prop: value}]}


def test_every_task_type_has_a_minimal_example() -> None:
    covered = {canonical_type(alias) for alias in MINIMAL_TASKS}
    assert covered == set(TASK_TYPES)
    for alias in MINIMAL_TASKS:
        validate_flow(_source(_flow([_task(alias, {})])))


@pytest.mark.parametrize(
    ("row", "flow"),
    [pytest.param(row, flow, id=case_id) for case_id, row, flow in refused_cases()],
)
def test_refused_property_fails_validation_naming_it(row: Row, flow: dict[str, Any]) -> None:
    validate_flow(_source(flow))  # valid without the property
    with pytest.raises(InvalidFlowError) as info:
        validate_flow(_source(_with_property(flow, row)))
    messages = [problem.message for problem in info.value.problems]
    assert any(row.prop in m and row.proof in m for m in messages), messages


def test_there_are_refused_rows_to_check() -> None:
    # An empty parametrization would pass silently; the tables do refuse things.
    assert len(refused_cases()) >= len(MINIMAL_TASKS)
