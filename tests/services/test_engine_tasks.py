"""Every validated task type runs: Labels, Resume, Fetch, KV, state, LocalFiles, WaitFor."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from controlplane.domain.tasktypes import TASK_TYPES
from controlplane.domain.tasktypes.base import FlowableBase
from controlplane.plugins.api import Flowable
from tests.services.test_engine import logs, put_flow, run, wait_for_end


def test_every_registered_task_type_can_run() -> None:
    # A type added to the validator without an implementation fails here.
    missing = [
        name
        for name, model in TASK_TYPES.items()
        if not issubclass(model, Flowable) and not callable(getattr(model, "run", None))
    ]
    assert missing == []
    # Flowable types resolve their children; they never run work of their own.
    assert not [m for m in TASK_TYPES.values() if issubclass(m, Flowable) and hasattr(m, "run")]
    assert all(issubclass(m, Flowable) for m in TASK_TYPES.values() if issubclass(m, FlowableBase))


def test_labels_task_adds_and_overrides_labels(client: TestClient, corpus: Path) -> None:
    ns, flow_id = put_flow(client, (corpus / "labels-update-task.yml").read_text())
    execution = run(
        client,
        ns,
        flow_id,
        labelsJson=json.dumps({"fromJson": "j"}),
        labelsMapKey="mapKey",
        labelsMapValue="mapValue",
        labelsListKey="listKey",
        labelsListValue="listValue",
    )
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    labels = execution["labels"]
    assert labels["flowLabelKey"] == "flowLabelValue"
    assert labels["fromJson"] == "j"
    assert labels["mapKey"] == "mapValue"
    assert labels["listKey"] == "listValue"
    assert labels["overriddenFlowLabelKey"] == "io.kestra.tests.labels-update-task"
    override_run = next(r for r in execution["task_runs"] if r["task_id"] == "override-labels")
    assert labels["overriddenExecutionLabelKey"] == override_run["id"]


def test_kv_set_get_delete(client: TestClient) -> None:
    source = """\
id: kv
namespace: demo
tasks:
  - {id: set, type: kv.Set, key: greeting, value: {text: "hello {{ flow.id }}"}}
  - {id: get, type: kv.Get, key: greeting}
  - {id: show, type: Log, message: "got {{ outputs.get.value.text }}"}
  - {id: again, type: kv.Set, key: greeting, value: other, overwrite: false, allowFailure: true}
  - {id: other_ns, type: kv.Get, key: greeting, namespace: elsewhere, allowFailure: true}
  - {id: del, type: kv.Delete, key: greeting}
  - {id: gone, type: kv.Get, key: greeting, errorOnMissing: true}
"""
    put_flow(client, source)
    execution = run(client, "demo", "kv")
    assert execution["state"] == "FAILED"
    runs = {r["task_id"]: r for r in execution["task_runs"]}
    assert runs["get"]["outputs"] == {"value": {"text": "hello kv"}}
    assert runs["again"]["state"] == "WARNING"
    # Another namespace's keys are out of reach unless it allows this one.
    assert runs["other_ns"]["state"] == "WARNING"
    assert runs["del"]["outputs"] == {"deleted": True}
    assert runs["gone"]["state"] == "FAILED"
    lines = logs(client, execution["id"])
    assert "got hello kv" in lines
    assert any("already exists in demo" in line for line in lines)


def test_kv_values_outlive_the_execution(client: TestClient) -> None:
    put_flow(
        client,
        "id: counter\nnamespace: demo\ntasks:\n"
        "  - {id: get, type: kv.Get, key: count}\n"
        "  - id: set\n    type: kv.Set\n    key: count\n"
        "    value: '{{ (outputs.get.value ?? 0) | int + 1 }}'\n",
    )
    run(client, "demo", "counter")
    second = run(client, "demo", "counter")
    runs = {r["task_id"]: r for r in second["task_runs"]}
    assert runs["get"]["outputs"] == {"value": "1"}


def test_state_tasks_keep_a_document_between_runs(client: TestClient, corpus: Path) -> None:
    ns, flow_id = put_flow(client, (corpus / "state.yaml").read_text())
    outcomes = []
    for _ in range(3):
        execution = run(client, ns, flow_id, state="counter")
        assert execution["state"] == "SUCCESS", logs(client, execution["id"])
        outcomes.append(
            {r["task_id"] for r in execution["task_runs"]} & {"create", "update", "delete"}
        )
    assert outcomes == [{"create"}, {"update"}, {"delete"}]


def test_local_files_in_a_working_directory(client: TestClient, corpus: Path) -> None:
    ns, flow_id = put_flow(client, (corpus / "working-directory.yaml").read_text())
    execution = run(client, ns, flow_id, failed="false")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    runs = {r["task_id"]: r for r in execution["task_runs"]}
    stored = runs["2_end"]["outputs"]["value"]
    assert stored.endswith("out/stay.txt")
    assert Path(stored).read_text() == runs["first"]["id"]


def test_working_directory_input_and_output_files(client: TestClient) -> None:
    source = """\
id: wdfiles
namespace: demo
tasks:
  - id: dir
    type: WorkingDirectory
    inputFiles:
      data/in.txt: "from {{ flow.id }}"
    outputFiles: ["*.out"]
    tasks:
      - id: copy
        type: shell.Commands
        commands: ["cat data/in.txt > result.out"]
"""
    put_flow(client, source)
    execution = run(client, "demo", "wdfiles")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    runs = {r["task_id"]: r for r in execution["task_runs"]}
    files = runs["dir"]["outputs"]["outputFiles"]
    assert Path(files["result.out"]).read_text().strip() == "from wdfiles"


def test_fetch_collects_the_logs_of_an_execution(client: TestClient, corpus: Path) -> None:
    ns, flow_id = put_flow(client, (corpus / "get-log-executionid.yaml").read_text())
    execution = run(client, ns, flow_id)
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    fetched = next(r for r in execution["task_runs"] if r["task_id"] == "get-log-task")
    assert fetched["outputs"]["size"] == 2
    lines = [json.loads(line) for line in Path(fetched["outputs"]["uri"]).read_text().splitlines()]
    assert [(line["taskId"], line["message"]) for line in lines] == [
        ("task-1", "task 1"),
        ("task-2", "task 2"),
    ]


def test_resume_task_resumes_another_execution_as_the_flow(
    client: TestClient, corpus: Path
) -> None:
    put_flow(client, "id: gate\nnamespace: demo\ntasks:\n  - {id: wait, type: Pause}\n")
    paused = run(client, "demo", "gate")
    assert paused["state"] == "PAUSED"
    # Resuming another namespace's run needs that namespace to allow the caller.
    allowed = client.put(
        "/api/v1/namespaces/demo", json={"allowed_namespaces": ["io.kestra.tests"]}
    )
    assert allowed.status_code in {200, 201}
    ns, flow_id = put_flow(client, (corpus / "resume-execution.yaml").read_text())
    resumer = run(client, ns, flow_id, executionId=paused["id"])
    assert resumer["state"] == "SUCCESS", logs(client, resumer["id"])
    final = wait_for_end(client, paused["id"])
    assert final["state"] == "SUCCESS"
    pause_run = next(r for r in final["task_runs"] if r["task_id"] == "wait")
    assert pause_run["resumed_by"] == "flow:io.kestra.tests/resume-execution"
    # Resuming it again fails the task: the run is no longer paused.
    again = run(client, ns, flow_id, executionId=paused["id"])
    assert again["state"] == "FAILED"
    assert any("not PAUSED" in line for line in logs(client, again["id"]))


def test_wait_for_repeats_until_the_condition_holds(client: TestClient, corpus: Path) -> None:
    # Kestra's LoopUntilCaseTest#waitfor: `count != '4'` holds after the first
    # iteration (count 2), so WaitFor stops there with iterationCount 1.
    ns, flow_id = put_flow(client, (corpus / "waitfor.yaml").read_text())
    execution = run(client, ns, flow_id)
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    runs = [r for r in execution["task_runs"] if r["task_id"] == "output_values"]
    assert [r["outputs"]["values"]["count"] for r in runs] == ["2"]
    wait_for = next(r for r in execution["task_runs"] if r["task_id"] == "waitfor")
    assert wait_for["outputs"] == {"iterationCount": 1}


def test_wait_for_limits(client: TestClient) -> None:
    source = """\
id: limited
namespace: demo
inputs:
  - {id: fail, type: BOOLEAN}
tasks:
  - id: loop
    type: WaitFor
    condition: "false"
    failOnMaxReached: "{{ inputs.fail }}"
    checkFrequency: {maxIterations: 3, interval: PT0.01S}
    tasks:
      - {id: tick, type: Return, format: "{{ outputs.loop.iterationCount }}"}
"""
    put_flow(client, source)
    failed = run(client, "demo", "limited", fail=True)
    assert failed["state"] == "FAILED"
    assert any("maxIterations reached after 3" in line for line in logs(client, failed["id"]))
    passed = run(client, "demo", "limited", fail=False)
    assert passed["state"] == "SUCCESS"
    ticks = [r["outputs"]["value"] for r in passed["task_runs"] if r["task_id"] == "tick"]
    assert ticks == ["1", "2", "3"]


def test_wait_for_long_interval_parks_the_execution(client: TestClient) -> None:
    source = """\
id: parked
namespace: demo
tasks:
  - id: loop
    type: WaitFor
    condition: "{{ outputs.tick.value == '2' }}"
    checkFrequency: {interval: PT2.5S}
    tasks:
      - {id: tick, type: Return, format: "{{ outputs.loop.iterationCount }}"}
"""
    put_flow(client, source)
    started = client.post("/api/v1/executions/demo/parked", json={}).json()
    final = wait_for_end(client, started["id"])
    assert final["state"] == "SUCCESS", logs(client, started["id"])
    # Between the iterations the run was parked, still RUNNING as in Kestra, holding no worker.
    states = [entry["state"] for entry in final["state_history"]]
    assert "PAUSED" not in states
    assert any("no worker held" in entry.get("reason", "") for entry in final["state_history"])
    ticks = [r["outputs"]["value"] for r in final["task_runs"] if r["task_id"] == "tick"]
    assert ticks == ["1", "2"]
