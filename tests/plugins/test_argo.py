"""The Argo flowables (``io.flowplane.argo.*``) each run a flow of core tasks to its end.

The corpus tests (``tests/argo/``) run them inside converted Argo examples;
these runs name each type for the no-stub rule and pin the rules a
hand-written flow relies on.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.services.test_engine import logs, put_flow, run

RUNS = {
    "io.flowplane.argo.Dag": "test_dag_runs_a_task_because_another_failed",
    "io.flowplane.argo.Loop": "test_loop_runs_items_in_order_and_aggregates_their_outputs",
    "io.flowplane.argo.Retry": "test_retry_runs_the_tasks_afresh_until_the_limit",
}


def _states(execution: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for task_run in execution["task_runs"]:
        found.setdefault(task_run["task_id"], []).append(task_run["state"])
    return found


def test_dag_runs_a_task_because_another_failed(client: TestClient) -> None:
    put_flow(
        client,
        """\
id: dag
namespace: argo.plugins
tasks:
  - id: graph
    type: io.flowplane.argo.Dag
    depends:
      cleanup: "broken.Failed"
      after: "broken"
    tasks:
      - task: {id: first, type: Log, message: first}
      - task: {id: broken, type: Fail}
        dependsOn: [first]
      - task: {id: cleanup, type: Log, message: "cleaning up"}
        dependsOn: [broken]
      - task: {id: after, type: Log, message: never}
        dependsOn: [broken]
""",
    )
    execution = run(client, "argo.plugins", "dag")
    states = _states(execution)
    # The failure is handled by `cleanup` (a leaf), but `after` is a leaf whose
    # branch failed: the dag fails, as Argo's assessDAGPhase decides.
    assert execution["state"] == "FAILED"
    assert states["cleanup"] == ["SUCCESS"]
    assert states["after"] == ["SKIPPED"]
    assert "task after omitted: its depends condition is not met" in logs(client, execution["id"])


def test_loop_runs_items_in_order_and_aggregates_their_outputs(client: TestClient) -> None:
    put_flow(
        client,
        """\
id: loop
namespace: argo.plugins
tasks:
  - id: each
    type: io.flowplane.argo.Loop
    items: [b, a, b]
    concurrency: 2
    collect: value
    tasks:
      - id: value
        type: OutputValues
        values:
          parameters:
            letter: "{{ taskrun.value | substringAfter(':') | upper }}"
""",
    )
    execution = run(client, "argo.plugins", "loop")
    assert execution["state"] == "SUCCESS"
    (loop,) = [r for r in execution["task_runs"] if r["task_id"] == "each"]
    # Equal items run apart ("<index>:<item>"), and outputs keep the items' order.
    assert loop["outputs"]["parameterValues"] == {"letter": ["B", "A", "B"]}
    assert loop["outputs"]["itemStates"] == ["Succeeded"] * 3


def test_retry_runs_the_tasks_afresh_until_the_limit(client: TestClient) -> None:
    put_flow(
        client,
        """\
id: retry
namespace: argo.plugins
tasks:
  - id: again
    type: io.flowplane.argo.Retry
    limit: 2
    tasks:
      - {id: note, type: Log, message: "attempt"}
      - {id: boom, type: Fail}
""",
    )
    execution = run(client, "argo.plugins", "retry")
    assert execution["state"] == "FAILED"
    states = _states(execution)
    assert states["note"] == ["SUCCESS"] * 3  # each attempt runs every task again
    assert states["boom"] == ["FAILED"] * 3
