"""The Argo flowables (``io.flowplane.argo.*``) each run a flow of core tasks to its end.

The corpus tests (``tests/argo/``) run them inside converted Argo examples;
these runs name each type for the no-stub rule and pin the rules a
hand-written flow relies on.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

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


# --- each property of the Argo flowables, written directly in a flow ---------------------
# Two tasks that each hold a lock directory for a moment: with more than one at
# once, the second `mkdir lock` fails (an ordering fact, not a timing one).
_HOLD_LOCK = "['mkdir lock', 'sleep 0.2', 'rmdir lock']"


def test_argo_dag_concurrent_runs_one_task_at_a_time(client: TestClient) -> None:
    put_flow(
        client,
        f"""\
id: dag-concurrent
namespace: argo.plugins
tasks:
  - id: dir
    type: WorkingDirectory
    tasks:
      - id: graph
        type: argo.Dag
        concurrent: 1
        tasks:
          - task: {{id: one, type: shell.Commands, commands: {_HOLD_LOCK}}}
          - task: {{id: two, type: shell.Commands, commands: {_HOLD_LOCK}}}
          - task: {{id: three, type: shell.Commands, commands: {_HOLD_LOCK}}}
""",
    )
    execution = run(client, "argo.plugins", "dag-concurrent")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert {k: v for k, v in _states(execution).items() if k in {"one", "two", "three"}} == {
        "one": ["SUCCESS"],
        "two": ["SUCCESS"],
        "three": ["SUCCESS"],
    }


def test_argo_dag_continue_on_lets_dependents_run_and_the_dag_warn(client: TestClient) -> None:
    put_flow(
        client,
        """\
id: dag-continue
namespace: argo.plugins
tasks:
  - id: tolerant
    type: io.flowplane.argo.Dag
    continueOn:
      boom: {failed: true}
    tasks:
      - task: {id: boom, type: Fail}
      - task: {id: next, type: Log, message: went on}
        dependsOn: [boom]
  - id: strict
    type: io.flowplane.argo.Dag
    tasks:
      - task: {id: boom2, type: Fail}
      - task: {id: next2, type: Log, message: never}
        dependsOn: [boom2]
""",
    )
    execution = run(client, "argo.plugins", "dag-continue")
    states = _states(execution)
    # continueOn.failed: `next` runs after the failure, and the dag ends WARNING.
    assert states["next"] == ["SUCCESS"]
    assert states["tolerant"] == ["WARNING"]
    # Without it the dependent is omitted and the dag fails (so the run does).
    assert states["next2"] == ["SKIPPED"]
    assert states["strict"] == ["FAILED"]
    assert execution["state"] == "FAILED"


def test_argo_dag_fail_fast_still_starts_ready_tasks(client: TestClient) -> None:
    # failFast: true, one task at a time, the failing task first: as in Argo's
    # controller, the tasks that are ready still start after the failure.
    put_flow(
        client,
        """\
id: dag-failfast
namespace: argo.plugins
tasks:
  - id: graph
    type: io.flowplane.argo.Dag
    failFast: true
    concurrent: 1
    tasks:
      - task: {id: boom, type: Fail}
      - task: {id: later, type: Log, message: later}
      - task: {id: last, type: Log, message: last}
""",
    )
    execution = run(client, "argo.plugins", "dag-failfast")
    states = _states(execution)
    assert execution["state"] == "FAILED"
    assert states["boom"] == ["FAILED"]
    assert states["later"] == ["SUCCESS"]
    assert states["last"] == ["SUCCESS"]
    (boom,) = [r for r in execution["task_runs"] if r["task_id"] == "boom"]
    (later,) = [r for r in execution["task_runs"] if r["task_id"] == "later"]
    assert boom["ended_at"] <= later["started_at"]


def test_argo_dag_target_runs_only_targets_and_their_ancestors(client: TestClient) -> None:
    put_flow(
        client,
        """\
id: dag-target
namespace: argo.plugins
tasks:
  - id: graph
    type: io.flowplane.argo.Dag
    target: "{{ 'step-c' }}"
    taskNames: {step-c: C}
    tasks:
      - task: {id: A, type: Log, message: a}
      - task: {id: B, type: Log, message: b}
        dependsOn: [A]
      - task: {id: C, type: Log, message: c}
        dependsOn: [A]
      - task: {id: D, type: Log, message: d}
        dependsOn: [C]
""",
    )
    execution = run(client, "argo.plugins", "dag-target")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    # The Argo name `step-c` reaches task C through taskNames; B and D never run.
    assert set(_states(execution)) == {"graph", "A", "C"}


def test_argo_loop_concurrency_runs_one_item_at_a_time(client: TestClient) -> None:
    put_flow(
        client,
        f"""\
id: loop-concurrency
namespace: argo.plugins
tasks:
  - id: dir
    type: WorkingDirectory
    tasks:
      - id: each
        type: argo.Loop
        items: [a, b, c]
        concurrency: 1
        tasks:
          - {{id: hold, type: shell.Commands, commands: {_HOLD_LOCK}}}
""",
    )
    execution = run(client, "argo.plugins", "loop-concurrency")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert _states(execution)["hold"] == ["SUCCESS"] * 3


def test_argo_loop_fail_fast_starts_no_item_after_a_failure(client: TestClient) -> None:
    put_flow(
        client,
        """\
id: loop-failfast
namespace: argo.plugins
tasks:
  - id: each
    type: io.flowplane.argo.Loop
    items: [ok, bad, ok, ok]
    concurrency: 1
    failFast: true
    tasks:
      - id: check
        type: Fail
        runIf: "{{ taskrun.value == '1:bad' }}"
""",
    )
    execution = run(client, "argo.plugins", "loop-failfast")
    assert execution["state"] == "FAILED"
    (loop,) = [r for r in execution["task_runs"] if r["task_id"] == "each"]
    assert loop["outputs"]["itemStates"] == ["Succeeded", "Failed", "Omitted", "Omitted"]
    assert "failFast: 2 item(s) not started after a failure" in logs(client, execution["id"])


def test_argo_loop_sequence_counts_and_formats_its_items(client: TestClient) -> None:
    put_flow(
        client,
        """\
id: loop-sequence
namespace: argo.plugins
tasks:
  - id: up
    type: io.flowplane.argo.Loop
    sequence: {start: 3, count: 3, format: "n%02d"}
    collect: number
    tasks:
      - id: number
        type: OutputValues
        values:
          parameters: {n: "{{ taskrun.value | substringAfter(':') }}"}
  - id: down
    type: io.flowplane.argo.Loop
    sequence: {start: "{{ 5 }}", end: 3}
    collect: number2
    tasks:
      - id: number2
        type: OutputValues
        values:
          parameters: {n: "{{ taskrun.value | substringAfter(':') }}"}
""",
    )
    execution = run(client, "argo.plugins", "loop-sequence")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    loops = {r["task_id"]: r for r in execution["task_runs"] if r["task_id"] in {"up", "down"}}
    assert loops["up"]["outputs"]["parameterValues"] == {"n": ["n03", "n04", "n05"]}
    assert loops["down"]["outputs"]["parameterValues"] == {"n": ["5", "4", "3"]}


def test_argo_retry_condition_false_stops_the_retries(client: TestClient) -> None:
    put_flow(
        client,
        """\
id: retry-condition
namespace: argo.plugins
tasks:
  - id: again
    type: io.flowplane.argo.Retry
    limit: 3
    condition: "{{ 1 > 2 }}"
    tasks:
      - {id: boom, type: Fail}
""",
    )
    execution = run(client, "argo.plugins", "retry-condition")
    assert execution["state"] == "FAILED"
    assert _states(execution)["boom"] == ["FAILED"]  # limit 3, yet one attempt
    assert "attempt 1 failed; the retry condition does not hold" in logs(client, execution["id"])


def test_argo_retry_backoff_waits_its_capped_interval_and_max_duration_ends_it(
    client: TestClient,
) -> None:
    put_flow(
        client,
        """\
id: retry-spent
namespace: argo.plugins
tasks:
  - id: again
    type: io.flowplane.argo.Retry
    limit: 3
    backoff: {interval: PT1S, maxDuration: PT0S}
    tasks:
      - {id: boom, type: Fail}
""",
    )
    execution = run(client, "argo.plugins", "retry-spent")
    assert _states(execution)["boom"] == ["FAILED"]
    assert "backoff.maxDuration PT0S passed: no retry" in logs(client, execution["id"])

    # interval 3h capped by maxInterval 1h: the retry is planned an hour after the failure.
    put_flow(
        client,
        """\
id: retry-wait
namespace: argo.plugins
tasks:
  - id: again
    type: io.flowplane.argo.Retry
    limit: 1
    backoff: {interval: PT3H, maxInterval: PT1H}
    tasks:
      - {id: boom, type: Fail}
""",
    )
    response = client.post("/api/v1/executions/argo.plugins/retry-wait", json={})
    assert response.status_code == 201, response.text
    execution_id = response.json()["id"]
    deadline = time.monotonic() + 30
    planned = None
    while planned is None and time.monotonic() < deadline:
        body = client.get(f"/api/v1/executions/{execution_id}").json()
        runs = {r["task_id"]: r for r in body["task_runs"]}
        planned = runs.get("again", {}).get("outputs", {}).get("nextAt")
        time.sleep(0.05)
    polled = datetime.now(UTC)
    assert planned is not None, body
    failed_at = datetime.fromisoformat(runs["boom"]["ended_at"])
    next_at = datetime.fromisoformat(planned)
    assert failed_at + timedelta(hours=1) <= next_at <= polled + timedelta(hours=1)
    assert runs["again"]["outputs"]["nextIteration"] == 2
    killed = client.post(f"/api/v1/executions/{execution_id}/kill")
    assert killed.status_code == 200, killed.text
