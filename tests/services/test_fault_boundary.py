"""One broken flow fails alone: every templated field a run evaluates is inside the boundary.

Each case runs a flow with one broken expression on the embedded worker of a
real server. The run must end FAILED with a log line naming the field, and a
healthy run queued right after must succeed on the same worker.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.errors import InvalidFlowError
from controlplane.services.executions import create_execution
from controlplane.services.flows import Provenance
from controlplane.services.flows import put_flow as store_flow
from controlplane.services.worker.worker import Worker
from controlplane.store.tables import ExecutionRow, LogRow
from tests.services.test_engine import logs, put_flow, run

HEALTHY = "id: healthy\nnamespace: demo\ntasks:\n  - {id: ok, type: Log, message: fine}\n"

# (case id, the tasks of a flow with one broken field, words its error must name)
CASES = [
    ("runIf", "  - {id: t, type: Log, message: hi, runIf: '{{ nope.nothing }}'}", ["'t'", "runIf"]),
    (
        "if-condition",
        "  - id: t\n    type: If\n    condition: '{{ undefined_var.x }}'\n"
        "    then: [{id: a, type: Log, message: a}]",
        ["'t'", "condition"],
    ),
    (
        "switch-value",
        "  - id: t\n    type: Switch\n    value: '{{ missing.x }}'\n"
        "    cases: {a: [{id: a, type: Log, message: a}]}",
        ["'t'", "value"],
    ),
    (
        "foreach-not-a-list",
        "  - id: t\n    type: ForEach\n    values: '{{ \"abc\" }}'\n"
        "    tasks: [{id: a, type: Log, message: a}]",
        ["'t'", "values", "not a list"],
    ),
    (
        "foreach-undefined",
        "  - id: t\n    type: ForEach\n    values: '{{ nope }}'\n"
        "    tasks: [{id: a, type: Log, message: a}]",
        ["'t'", "values"],
    ),
    (
        "subflow-inputs",
        "  - id: t\n    type: Subflow\n    namespace: demo\n    flowId: healthy\n"
        "    inputs: {a: '{{ nope.x }}'}",
        ["'t'", "inputs"],
    ),
    (
        "subflow-missing-flow",
        "  - {id: t, type: Subflow, namespace: demo, flowId: no-such-flow}",
        ["'t'", "no-such-flow", "does not exist"],
    ),
    (
        "log-message",
        "  - {id: t, type: Log, message: '{{ nope.x }}'}",
        ["'t'", "message"],
    ),
    (
        "timeout",
        "  - {id: t, type: Log, message: hi, timeout: '{{ nope.x }}'}",
        ["'t'", "timeout"],
    ),
    (
        "retry-interval",
        "  - id: t\n    type: Fail\n    retry: {type: constant, interval: '{{ nope.x }}', "
        "maxAttempts: 3}",
        ["'t'", "retry.interval"],
    ),
    (
        "parallel-concurrent",
        "  - id: t\n    type: Parallel\n    concurrent: '{{ \"many\" }}'\n"
        "    tasks: [{id: a, type: Log, message: a}]",
        ["'t'", "concurrent", "not an integer"],
    ),
    (
        "waitfor-condition",
        "  - id: t\n    type: WaitFor\n    condition: '{{ nope.x }}'\n"
        "    tasks: [{id: a, type: Log, message: a}]",
        ["'t'", "condition"],
    ),
]


def _flow(tasks: str, flow_id: str = "broken", extra: str = "") -> str:
    return f"id: {flow_id}\nnamespace: demo\ntasks:\n{tasks}\n{extra}"


@pytest.mark.parametrize(("name", "tasks", "words"), CASES, ids=[c[0] for c in CASES])
def test_a_broken_field_fails_its_run_and_the_next_run_succeeds(
    client: TestClient, name: str, tasks: str, words: list[str]
) -> None:
    put_flow(client, HEALTHY)
    put_flow(client, _flow(tasks))
    broken = run(client, "demo", "broken")
    assert broken["state"] == "FAILED", name
    lines = logs(client, broken["id"])
    assert any(all(word in line for word in words) for line in lines), lines
    healthy = run(client, "demo", "healthy")
    assert healthy["state"] == "SUCCESS"


def test_broken_flow_outputs_fail_the_run_naming_the_output(client: TestClient) -> None:
    put_flow(client, HEALTHY)
    put_flow(
        client,
        _flow(
            "  - {id: t, type: Return, format: x}",
            extra="outputs:\n  - {id: result, type: STRING, value: '{{ outputs.nope.value }}'}\n",
        ),
    )
    broken = run(client, "demo", "broken")
    assert broken["state"] == "FAILED"
    assert any("outputs.result" in line for line in logs(client, broken["id"]))
    assert run(client, "demo", "healthy")["state"] == "SUCCESS"


def test_a_broken_listener_never_disturbs_the_upstream_run(client: TestClient) -> None:
    put_flow(client, HEALTHY)
    listener = """\
id: listener
namespace: demo
tasks:
  - {id: a, type: Log, message: fired}
triggers:
  - id: on-healthy
    type: Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExpressionCondition
        expression: "{{ trigger.nope.missing == 'x' }}"
"""
    good = listener.replace("listener", "listener-ok").replace(
        "{{ trigger.nope.missing == 'x' }}", "{{ trigger.flowId == 'healthy' }}"
    )
    put_flow(client, listener)
    put_flow(client, good)
    upstream = run(client, "demo", "healthy")
    assert upstream["state"] == "SUCCESS"
    # The good listener still fired; the broken one did not, and the worker lives on.
    again = run(client, "demo", "healthy")
    assert again["state"] == "SUCCESS"
    listed = client.get("/api/v1/executions", params={"flow_id": "listener-ok"}).json()
    items = listed["items"] if isinstance(listed, dict) else listed
    assert len(items) >= 1


def _states(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        return {row.id: row.state for row in session.exec(select(ExecutionRow)).all()}


BROKEN_EXPRESSIONS = st.sampled_from(
    [
        "{{ nope.x }}",
        "{{ 1 / 0 }}",
        "{{ [1, 2] | int }}",
        "{{ {'a': 1}.b.c }}",
        "{{ outputs.missing.value }}",
        "{{ 'x' | date }}",
        "{% for i in %}",
        "{{ 9 ** 99999999 }}",
        "{{ range(10) | json | fromJson | sum }}",
    ]
)
PLACES = st.sampled_from(
    [
        "  - {id: t, type: Log, message: 'EXPR'}",
        "  - {id: t, type: Log, message: hi, runIf: 'EXPR'}",
        "  - id: t\n    type: If\n    condition: 'EXPR'\n"
        "    then: [{id: a, type: Log, message: a}]",
        "  - id: t\n    type: ForEach\n    values: 'EXPR'\n"
        "    tasks: [{id: a, type: Log, message: a}]",
        "  - {id: t, type: Return, format: 'EXPR'}",
        "  - id: t\n    type: Switch\n    value: 'EXPR'\n"
        "    cases: {a: [{id: a, type: Log, message: a}]}",
        "  - {id: t, type: Sleep, duration: 'EXPR'}",
        "  - {id: t, type: Log, message: hi, timeout: 'EXPR'}",
    ]
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(place=PLACES, expression=BROKEN_EXPRESSIONS)
def test_generated_broken_flows_never_kill_the_worker(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory, place: str, expression: str
) -> None:
    tmp_path = tmp_path_factory.mktemp("worker")
    store_flow(engine, "demo", "healthy", HEALTHY, Provenance())
    source = _flow(place.replace("EXPR", expression.replace("'", "''")))
    try:
        store_flow(engine, "demo", "broken", source, Provenance())
    except InvalidFlowError:
        broken = None  # refused up front (a syntax error): nothing to run
    else:
        broken = create_execution(engine, "demo", "broken", inputs={})
    worker = Worker(engine=engine, data_dir=tmp_path)
    healthy = create_execution(engine, "demo", "healthy", inputs={})
    # Each turn returns normally: no exception escapes the worker's boundary.
    for _ in range(4):
        worker.run_once()
    states = _states(engine)
    if broken is not None:
        assert states[broken.id] in {"SUCCESS", "FAILED", "WARNING"}, source
    assert states[healthy.id] == "SUCCESS"


def test_a_nul_byte_in_a_log_line_is_stored_escaped(engine: Engine, tmp_path_factory) -> None:
    # PostgreSQL refuses NUL in text; the database pass of CI runs this there.
    source = _flow(
        '  - {id: t, type: Log, message: "a\\0b"}\n  - {id: r, type: Return, format: "c\\0d"}'
    )
    store_flow(engine, "demo", "nul", source.replace("id: broken", "id: nul"), Provenance())
    worker = Worker(engine=engine, data_dir=tmp_path_factory.mktemp("w"))
    execution = create_execution(engine, "demo", "nul", inputs={})
    worker.run_once()
    assert _states(engine)[execution.id] == "SUCCESS"
    with Session(engine) as session:
        messages = session.exec(
            select(LogRow.message).where(col(LogRow.execution_id) == execution.id)
        ).all()
    assert "a\\x00b" in messages
