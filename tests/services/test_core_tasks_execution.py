"""execution.Assert and execution.Count, run as flows through the real worker."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.services.test_engine import logs, put_flow, run, task_runs

ASSERTING = """\
id: checks
namespace: demo
inputs:
  - {id: param, type: STRING}
tasks:
  - id: check
    type: io.kestra.plugin.core.execution.Assert
    conditions:
      - "{{ inputs.param == 'ok' }}"
      - "{{ 1 + 1 == 3 }}"
      - "{{ 1 + 1 == 2 }}"
      - "{{ nothing.here }}"
    errorMessage: "checked {{ inputs.param }}"
  - {id: after, type: Log, message: after}
"""


def test_assert_fails_listing_every_condition_that_does_not_hold(client: TestClient) -> None:
    put_flow(client, ASSERTING)
    failed = run(client, "demo", "checks", param="ko")
    assert failed["state"] == "FAILED"
    assert "after" not in task_runs(failed)
    lines = logs(client, failed["id"])
    expected = (
        "3 assertions failed: `{{ inputs.param == 'ok' }}`, `{{ 1 + 1 == 3 }}`, "
        "`{{ nothing.here }}`\nchecked ko"
    )
    assert any(expected in line for line in lines), lines
    assert "assertion `{{ 1 + 1 == 3 }}` failed" in lines
    assert any("`{{ nothing.here }}` failed to render" in line for line in lines)


def test_assert_passes_when_every_condition_holds(client: TestClient) -> None:
    put_flow(client, ASSERTING.replace('      - "{{ nothing.here }}"\n', ""))
    passed = run(client, "demo", "checks", param="ok")
    assert passed["state"] == "FAILED"  # 1 + 1 == 3 still fails, alone
    assert any(
        line.startswith("1 assertion failed: `{{ 1 + 1 == 3 }}`")
        for line in logs(client, passed["id"])
    )
    put_flow(
        client,
        ASSERTING.replace('      - "{{ nothing.here }}"\n', "").replace(
            '      - "{{ 1 + 1 == 3 }}"\n', ""
        ),
    )
    assert run(client, "demo", "checks", param="ok")["state"] == "SUCCESS"


COUNTED = "id: {id}\nnamespace: {ns}\ntasks:\n  - {{id: t, type: {type}}}\n"

COUNTING = """\
id: counter
namespace: demo
inputs:
  - {id: since, type: STRING, defaults: "2020-01-01T00:00:00Z"}
tasks:
  - id: all
    type: execution.Count
    flows:
      - {namespace: demo, flowId: counted}
      - {namespace: demo, flowId: never}
    startDate: "{{ inputs.since }}"
    expression: "{{ count >= 0 }}"
  - id: idle
    type: execution.Count
    flows:
      - {namespace: demo, flowId: counted}
      - {namespace: demo, flowId: never}
    startDate: "{{ inputs.since }}"
    expression: "{{ count == 0 }}"
  - id: failures
    type: io.kestra.plugin.core.execution.Count
    namespaces: [demo]
    states: [FAILED]
    startDate: "{{ inputs.since }}"
    endDate: "{{ now() }}"
    expression: "{{ count > 0 }}"
"""


def test_count_counts_real_executions_per_flow_and_namespace(client: TestClient) -> None:
    put_flow(client, COUNTED.format(id="counted", ns="demo", type="Log, message: m"))
    put_flow(client, COUNTED.format(id="broken", ns="demo", type="Fail, errorMessage: m"))
    for _ in range(3):
        assert run(client, "demo", "counted")["state"] == "SUCCESS"
    assert run(client, "demo", "broken")["state"] == "FAILED"
    put_flow(client, COUNTING)
    execution = run(client, "demo", "counter")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    runs = task_runs(execution)
    # The counter's own run (RUNNING) is one of demo's runs, but not of these flows.
    assert runs["all"]["outputs"] == {
        "results": [
            {"namespace": "demo", "flowId": "counted", "count": 3},
            {"namespace": "demo", "flowId": "never", "count": 0},
        ],
        "total": 3,
    }
    assert runs["idle"]["outputs"] == {
        "results": [{"namespace": "demo", "flowId": "never", "count": 0}],
        "total": 0,
    }
    assert runs["failures"]["outputs"] == {
        "results": [{"namespace": "demo", "flowId": None, "count": 1}],
        "total": 1,
    }
    later = run(client, "demo", "counter", since="2999-01-01T00:00:00+02:00")
    assert task_runs(later)["all"]["outputs"]["total"] == 0


def test_count_reads_another_namespace_only_where_it_is_allowed(client: TestClient) -> None:
    put_flow(client, COUNTED.format(id="job", ns="team.b", type="Log, message: m"))
    assert run(client, "team.b", "job")["state"] == "SUCCESS"
    counter = """\
id: peek
namespace: team.a
tasks:
  - id: peek
    type: execution.Count
    flows: [{namespace: team.b, flowId: job}]
    startDate: "2020-01-01T00:00:00Z"
    expression: "{{ count > 0 }}"
"""
    put_flow(client, counter)
    refused = run(client, "team.a", "peek")
    assert refused["state"] == "FAILED"
    assert any(
        "namespace team.b does not allow flows from team.a to count its executions" in line
        for line in logs(client, refused["id"])
    )
    response = client.put("/api/v1/namespaces/team.b", json={"allowed_namespaces": ["team.a"]})
    assert response.status_code in {200, 201}, response.text
    allowed = run(client, "team.a", "peek")
    assert allowed["state"] == "SUCCESS", logs(client, allowed["id"])
    assert task_runs(allowed)["peek"]["outputs"]["total"] == 1
