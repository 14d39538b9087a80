"""Properties the validator accepts are honoured at run time (they were accepted and ignored)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from controlplane.store.tables import ExecutionRow
from tests.services.test_engine import logs, put_flow, run, task_runs, wait_for_end


def test_timeout_stops_a_sleep_that_would_run_longer(client: TestClient) -> None:
    put_flow(
        client,
        "id: slow\nnamespace: demo\ntasks:\n"
        "  - {id: nap, type: Sleep, duration: PT30S, timeout: PT1S}\n",
    )
    started = time.monotonic()
    execution = run(client, "demo", "slow")
    assert execution["state"] == "FAILED"
    # The 30-second sleep was cut short: the run ended well inside the API's wait.
    assert time.monotonic() - started < 30
    assert any("timed out after PT1S" in line for line in logs(client, execution["id"]))


def test_timeout_on_a_flowable_bounds_its_children(client: TestClient) -> None:
    put_flow(
        client,
        "id: seq\nnamespace: demo\ntasks:\n"
        "  - id: group\n    type: Sequential\n    timeout: PT1S\n    tasks:\n"
        "      - {id: a, type: Sleep, duration: PT30S}\n"
        "      - {id: b, type: Log, message: never}\n",
    )
    execution = run(client, "demo", "seq")
    assert execution["state"] == "FAILED"
    assert "b" not in task_runs(execution) or task_runs(execution)["b"]["state"] != "SUCCESS"


def test_flow_level_retry_is_the_default_for_tasks(client: TestClient) -> None:
    put_flow(
        client,
        "id: flaky\nnamespace: demo\n"
        "retry: {type: constant, interval: PT0.1S, maxAttempts: 3}\n"
        "tasks:\n  - {id: boom, type: Fail}\n",
    )
    execution = run(client, "demo", "flaky")
    assert execution["state"] == "FAILED"
    assert task_runs(execution)["boom"]["attempt"] == 3


def test_retry_max_duration_ends_retries_early(client: TestClient) -> None:
    put_flow(
        client,
        "id: bounded\nnamespace: demo\ntasks:\n"
        "  - id: boom\n    type: Fail\n"
        "    retry: {type: constant, interval: PT0.4S, maxAttempts: 50, maxDuration: PT1S}\n",
    )
    execution = run(client, "demo", "bounded")
    assert execution["state"] == "FAILED"
    assert 1 < task_runs(execution)["boom"]["attempt"] < 50
    assert any("maxDuration" in line for line in logs(client, execution["id"]))


def test_warning_on_retry_turns_a_late_success_into_warning(client: TestClient) -> None:
    # The working directory is per attempt, so the marker lives in the shared one.
    put_flow(
        client,
        "id: late\nnamespace: demo\ntasks:\n"
        "  - id: wd\n    type: WorkingDirectory\n    tasks:\n"
        "      - id: second-time\n        type: shell.Commands\n"
        "        retry: {type: constant, interval: PT0.1S, maxAttempts: 2, warningOnRetry: true}\n"
        "        commands:\n"
        "          - 'test -f marker && exit 0; touch marker; exit 1'\n",
    )
    execution = run(client, "demo", "late")
    runs = task_runs(execution)
    assert runs["second-time"]["attempt"] == 2
    assert runs["second-time"]["state"] == "WARNING"
    assert execution["state"] == "WARNING"


def test_retry_behavior_create_new_execution(client: TestClient, engine: Engine) -> None:
    put_flow(
        client,
        "id: again\nnamespace: demo\ntasks:\n"
        "  - id: boom\n    type: Fail\n"
        "    retry: {type: constant, interval: PT0.1S, maxAttempts: 3, "
        "behavior: CREATE_NEW_EXECUTION}\n",
    )
    first = run(client, "demo", "again")
    assert first["state"] == "RETRIED"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with Session(engine) as session:
            rows = session.exec(select(ExecutionRow)).all()
            retries = [r for r in rows if r.trigger.get("retryOf") == first["id"]]
            if len(retries) == 2 and {r.state for r in retries} == {"RETRIED", "FAILED"}:
                break
        time.sleep(0.1)
    by_attempt = {r.trigger["attempt"]: r.state for r in retries}
    assert by_attempt == {2: "RETRIED", 3: "FAILED"}  # the last attempt is not retried
    assert all(r.flow_revision == first["flow_revision"] for r in retries)


def test_allow_warning_turns_warning_into_success(client: TestClient) -> None:
    put_flow(
        client,
        "id: warned\nnamespace: demo\ntasks:\n"
        "  - id: group\n    type: Sequential\n    allowWarning: true\n    tasks:\n"
        "      - {id: a, type: Fail, allowFailure: true}\n",
    )
    execution = run(client, "demo", "warned")
    assert task_runs(execution)["a"]["state"] == "WARNING"
    assert task_runs(execution)["group"]["state"] == "SUCCESS"
    assert execution["state"] == "SUCCESS"


def test_log_level_drops_lower_lines(client: TestClient) -> None:
    put_flow(
        client,
        "id: quiet\nnamespace: demo\ntasks:\n"
        "  - {id: chatty, type: Log, message: debug-line, level: DEBUG, logLevel: INFO}\n"
        "  - {id: loud, type: Log, message: warn-line, level: WARN, logLevel: INFO}\n",
    )
    execution = run(client, "demo", "quiet")
    lines = logs(client, execution["id"])
    assert "warn-line" in lines
    assert "debug-line" not in lines


def test_templated_concurrent_is_rendered(client: TestClient) -> None:
    # concurrent renders to 1, so the branches run one after the other; a
    # template read as "no limit" would start both at once.
    put_flow(
        client,
        "id: par\nnamespace: demo\nvariables: {width: 1}\ntasks:\n"
        "  - id: p\n    type: Parallel\n    concurrent: '{{ vars.width }}'\n    tasks:\n"
        "      - {id: a, type: Sleep, duration: PT0.3S}\n"
        "      - {id: b, type: Sleep, duration: PT0.3S}\n",
    )
    execution = run(client, "demo", "par")
    assert execution["state"] == "SUCCESS"
    a, b = sorted(
        (r for r in execution["task_runs"] if r["task_id"] in {"a", "b"}),
        key=lambda r: r["started_at"],
    )
    assert a["ended_at"] <= b["started_at"]


def test_subflow_revision_labels_and_schedule_date(client: TestClient, engine: Engine) -> None:
    child = "id: child\nnamespace: demo\ntasks:\n  - {id: r, type: Return, format: 'REV'}\n"
    child += "outputs:\n  - {id: rev, type: STRING, value: '{{ flow.revision }}'}\n"
    put_flow(client, child.replace("REV", "one"))
    put_flow(client, child.replace("REV", "two"))
    put_flow(
        client,
        "id: parent\nnamespace: demo\ntasks:\n"
        "  - id: sub\n    type: Subflow\n    namespace: demo\n    flowId: child\n"
        "    revision: 1\n    labels: {team: ops}\n",
    )
    execution = run(client, "demo", "parent")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    outputs = task_runs(execution)["sub"]["outputs"]
    assert outputs["outputs"] == {"rev": "1"}
    child_run = client.get(f"/api/v1/executions/{outputs['executionId']}").json()
    assert child_run["flow_revision"] == 1
    assert child_run["labels"]["team"] == "ops"

    put_flow(
        client,
        "id: later\nnamespace: demo\ntasks:\n"
        "  - id: sub\n    type: Subflow\n    namespace: demo\n    flowId: child\n"
        "    wait: false\n    scheduleDate: '{{ now() | dateAdd(1, \"HOURS\") }}'\n",
    )
    execution = run(client, "demo", "later")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    scheduled = client.get(
        f"/api/v1/executions/{task_runs(execution)['sub']['outputs']['executionId']}"
    ).json()
    assert scheduled["state"] == "CREATED"  # waits for its date


def test_a_parent_waiting_on_its_subflow_records_one_history_entry(
    client: TestClient,
) -> None:
    # The child waits without holding the worker, so the parent is woken to
    # poll it several times; each poll must not add a history entry.
    put_flow(
        client,
        "id: nap\nnamespace: demo\ntasks:\n  - {id: s, type: Pause, pauseDuration: PT2S}\n",
    )
    put_flow(
        client,
        "id: waiter\nnamespace: demo\ntasks:\n"
        "  - {id: sub, type: Subflow, namespace: demo, flowId: nap}\n",
    )
    execution = run(client, "demo", "waiter")
    assert execution["state"] == "SUCCESS"
    waits = [h for h in execution["state_history"] if "waiting" in h.get("reason", "")]
    assert len(waits) == 1


def test_pause_tasks_run_after_the_resume(client: TestClient) -> None:
    put_flow(
        client,
        "id: gate\nnamespace: demo\ntasks:\n"
        "  - id: wait\n    type: Pause\n    pauseDuration: PT0.5S\n    behavior: RESUME\n"
        "    tasks:\n      - {id: after, type: Log, message: after-the-pause}\n",
    )
    started = client.post("/api/v1/executions/demo/gate", json={}).json()
    final = wait_for_end(client, started["id"])
    assert final["state"] == "SUCCESS"
    assert "after-the-pause" in logs(client, started["id"])
    assert task_runs(final)["after"]["state"] == "SUCCESS"


def test_subflow_outputs_are_rendered_against_the_child(client: TestClient) -> None:
    put_flow(
        client,
        "id: child\nnamespace: demo\ntasks:\n  - {id: r, type: Return, format: from-child}\n",
    )
    put_flow(
        client,
        "id: parent\nnamespace: demo\ntasks:\n"
        "  - id: sub\n    type: Subflow\n    namespace: demo\n    flowId: child\n"
        "    outputs: {extracted: '{{ outputs.r.value }}!'}\n"
        "  - {id: show, type: Log, message: '{{ outputs.sub.outputs.extracted }}'}\n",
    )
    execution = run(client, "demo", "parent")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert "from-child!" in logs(client, execution["id"])


def test_working_directory_cache_survives_to_the_next_execution(client: TestClient) -> None:
    put_flow(
        client,
        """\
id: cached
namespace: demo
tasks:
  - id: wd
    type: WorkingDirectory
    cache: {ttl: PT5M, patterns: ["*.txt"]}
    tasks:
      - id: check
        type: shell.Commands
        commands:
          - 'if [ -f kept.txt ]; then echo "found $(cat kept.txt)"; else echo first; fi'
          - echo run > kept.txt
""",
    )
    first = run(client, "demo", "cached")
    second = run(client, "demo", "cached")
    assert first["state"] == second["state"] == "SUCCESS"
    assert "first" in logs(client, first["id"])
    assert "found run" in logs(client, second["id"])


def test_webhook_and_flow_trigger_labels_reach_the_run(client: TestClient) -> None:
    # The listener is stored first: a Flow trigger sees the upstream runs that end
    # after it exists, and the webhook's run may end at once.
    put_flow(
        client,
        "id: listener\nnamespace: demo\ntasks:\n  - {id: a, type: Log, message: fired}\n"
        "triggers:\n  - id: on-hooked\n    type: Flow\n    labels: {via: flow-trigger}\n"
        "    conditions: [{type: ExecutionFlow, namespace: demo, flowId: hooked}]\n",
    )
    put_flow(
        client,
        "id: hooked\nnamespace: demo\ntasks:\n  - {id: a, type: Log, message: hi}\n"
        "triggers:\n  - {id: hook, type: Webhook, key: k1, labels: {via: webhook}}\n",
    )
    started = client.post("/api/v1/executions/webhook/demo/hooked/k1", json={})
    assert started.status_code == 201, started.text
    assert started.json()["labels"]["via"] == "webhook"
    wait_for_end(client, started.json()["id"])
    deadline = time.monotonic() + 30
    listened: list[dict] = []
    while not listened and time.monotonic() < deadline:
        body = client.get("/api/v1/executions", params={"flow_id": "listener"}).json()
        listened = body["items"] if isinstance(body, dict) else body
        time.sleep(0.05)
    assert listened, "the flow trigger did not fire"
    assert listened[0]["labels"]["via"] == "flow-trigger"
