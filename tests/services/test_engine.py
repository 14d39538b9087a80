"""Executions run on their pinned revision, through the API, with a real embedded worker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from tests.conftest import token_headers


def put_flow(client: TestClient, source: str) -> tuple[str, str]:
    flow = validate_flow(source)
    ns, flow_id = flow.namespace, flow.id
    response = client.put(f"/api/v1/flows/{ns}/{flow_id}", json={"content": source})
    assert response.status_code in {200, 201}, response.text
    return ns, flow_id


def run(client: TestClient, ns: str, flow_id: str, **inputs: Any) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/executions/{ns}/{flow_id}",
        params={"wait": True, "timeout": 30},
        json={"inputs": inputs},
    )
    assert response.status_code == 201, response.text
    return response.json()


def task_runs(execution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An execution's task runs by task id."""
    return {r["task_id"]: r for r in execution["task_runs"]}


def logs(client: TestClient, execution_id: str) -> list[str]:
    return [
        line["message"] for line in client.get(f"/api/v1/executions/{execution_id}/logs").json()
    ]


def test_outputs_flow_between_tasks_and_revision_is_pinned(client: TestClient) -> None:
    source = """\
id: hello
namespace: demo
inputs:
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: greet
    type: Return
    format: "hello {{ inputs.name }}"
  - id: say
    type: Log
    message: "{{ outputs.greet.value }} from r{{ flow.revision }}"
outputs:
  - id: greeting
    value: "{{ outputs.greet.value }}"
"""
    put_flow(client, source)
    execution = run(client, "demo", "hello", name="ops")
    assert execution["state"] == "SUCCESS"
    assert execution["flow_revision"] == 1
    assert execution["origin"] == "api"
    assert execution["outputs"] == {"greeting": "hello ops"}
    assert "hello ops from r1" in logs(client, execution["id"])


def test_corpus_outcomes(client: TestClient, corpus: Path) -> None:
    # file → (inputs, the end state its content implies)
    expected: dict[str, tuple[dict[str, Any], str]] = {
        "minimal.yaml": ({}, "SUCCESS"),
        "sequential.yaml": ({}, "SUCCESS"),
        "parallel.yaml": ({}, "SUCCESS"),
        "if-condition.yaml": ({"param": "true"}, "SUCCESS"),
        "switch.yaml": ({"string": "FIRST"}, "SUCCESS"),
        # `ko` is undefined for values 2 and 3; AllowFailure turns that into WARNING
        "each-sequential.yaml": ({}, "WARNING"),
        "dag.yaml": ({}, "SUCCESS"),
        "errors.yaml": ({}, "FAILED"),
        "failed-first.yaml": ({}, "FAILED"),
        "retry-fail.yaml": ({}, "FAILED"),
    }
    for name, (inputs, state) in expected.items():
        source = (corpus / name).read_text()
        ns, flow_id = put_flow(client, source)
        got = run(client, ns, flow_id, **inputs)
        assert got["state"] == state, (name, got["state"], logs(client, got["id"]))


def test_invalid_inputs_are_422_naming_the_input(client: TestClient) -> None:
    put_flow(
        client,
        "id: typed\nnamespace: demo\ninputs:\n  - {id: n, type: INT}\n"
        "tasks:\n  - {id: a, type: Log, message: '{{ inputs.n }}'}\n",
    )
    response = client.post("/api/v1/executions/demo/typed", json={"inputs": {"n": "many"}})
    assert response.status_code == 422
    assert response.json()["problems"][0]["path"] == "inputs.n"
    missing = client.post("/api/v1/executions/demo/typed", json={"inputs": {}})
    assert "required INT input is missing" in missing.json()["message"]


def test_shell_commands_set_outputs_and_fail_on_exit_code(client: TestClient) -> None:
    source = """\
id: shell
namespace: demo
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo working
      - 'echo ''::{"outputs":{"count":3}}::'''
  - id: use
    type: Log
    message: "count={{ outputs.sh.vars.count }}"
  - id: boom
    type: shell.Commands
    commands: ["exit 7"]
"""
    put_flow(client, source)
    execution = run(client, "demo", "shell")
    assert execution["state"] == "FAILED"
    lines = logs(client, execution["id"])
    assert "working" in lines
    assert "count=3" in lines
    assert "command exited with code 7" in lines


def test_pause_waits_and_records_who_resumed(client: TestClient) -> None:
    source = """\
id: gate
namespace: demo
tasks:
  - id: approve
    type: Pause
    onResume:
      - id: reason
        type: STRING
  - id: after
    type: Log
    message: "resumed because {{ outputs.approve.onResume.reason }}"
"""
    put_flow(client, source)
    paused = run(client, "demo", "gate")
    assert paused["state"] == "PAUSED"
    url = f"/api/v1/executions/{paused['id']}/resume"
    alice = token_headers(client, "alice")
    bad = client.post(url, json={"inputs": {}}, headers=alice)
    assert bad.status_code == 422
    ok = client.post(url, json={"inputs": {"reason": "ship it"}}, headers=alice)
    assert ok.status_code == 200, ok.text
    again = client.post(url, json={"inputs": {"reason": "x"}}, headers=token_headers(client, "bob"))
    assert again.status_code == 409
    final = wait_for_end(client, paused["id"])
    assert final["state"] == "SUCCESS"
    pause_run = next(r for r in final["task_runs"] if r["task_id"] == "approve")
    assert pause_run["resumed_by"] == "alice"
    assert pause_run["resumed_at"] is not None
    assert "resumed because ship it" in logs(client, paused["id"])


def test_revision_is_pinned_even_if_flow_changes(client: TestClient) -> None:
    source = (
        "id: pin\nnamespace: demo\ntasks:\n"
        "  - {id: p, type: Pause}\n  - {id: l, type: Log, message: one}\n"
    )
    put_flow(client, source)
    paused = run(client, "demo", "pin")
    put_flow(client, source.replace("message: one", "message: two"))
    client.post(f"/api/v1/executions/{paused['id']}/resume", json={})
    final = wait_for_end(client, paused["id"])
    assert final["flow_revision"] == 1
    assert "one" in logs(client, paused["id"])


def test_illegal_transitions_are_refused(client: TestClient) -> None:
    put_flow(client, "id: quick\nnamespace: demo\ntasks:\n  - {id: a, type: Log, message: hi}\n")
    done = run(client, "demo", "quick")
    response = client.post(f"/api/v1/executions/{done['id']}/resume", json={})
    assert response.status_code == 409
    assert "not PAUSED" in response.json()["message"]
    assert client.post(f"/api/v1/executions/{done['id']}/kill").status_code == 409


def wait_for_end(client: TestClient, execution_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/executions/{execution_id}").json()
        if body["state"] in {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"}:
            return body
        time.sleep(0.05)
    pytest.fail(f"execution {execution_id} did not end")


def test_working_directory_shares_files_between_tasks(client: TestClient) -> None:
    source = """\
id: wd
namespace: demo
tasks:
  - id: dir
    type: WorkingDirectory
    tasks:
      - id: write
        type: shell.Commands
        commands: ["echo shared-content > note.txt"]
      - id: read
        type: python.Script
        script: |
          print(open("note.txt").read().strip())
"""
    put_flow(client, source)
    execution = run(client, "demo", "wd")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert "shared-content" in logs(client, execution["id"])


def test_http_request_outputs_status_and_body(client: TestClient) -> None:
    import threading  # noqa: PLC0415
    from http.server import BaseHTTPRequestHandler, HTTPServer  # noqa: PLC0415

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            body = self.rfile.read(length)
            self.send_response(201 if body == b"ping" else 400)
            self.end_headers()
            self.wfile.write(b"pong:" + body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        source = f"""\
id: http
namespace: demo
tasks:
  - id: call
    type: http.Request
    uri: http://127.0.0.1:{port}/hook
    method: POST
    body: ping
  - id: show
    type: Log
    message: "{{{{ outputs.call.code }}}} {{{{ outputs.call.body }}}}"
  - id: bad
    type: http.Request
    uri: http://127.0.0.1:{port}/hook
    method: POST
    body: nope
"""
        put_flow(client, source)
        execution = run(client, "demo", "http")
    finally:
        server.shutdown()
        server.server_close()
    assert execution["state"] == "FAILED"
    lines = logs(client, execution["id"])
    assert "201 pong:ping" in lines
    assert any("answered 400" in line for line in lines)


def test_webhook_trigger_starts_a_run_with_the_body(client: TestClient, corpus: Path) -> None:
    ns, flow_id = put_flow(client, (corpus / "webhook-with-condition.yaml").read_text())
    url = f"/api/v1/executions/webhook/{ns}/{flow_id}"
    assert client.post(url + "/wrongKey", json={"hello": "world"}).status_code == 404
    assert client.post(url + "/webhookKey", json={"hello": "mars"}).status_code == 409
    started = client.post(url + "/webhookKey", json={"hello": "world"})
    assert started.status_code == 201, started.text
    assert started.json()["trigger"]["type"] == "webhook"
    final = wait_for_end(client, started.json()["id"])
    assert final["state"] == "SUCCESS"
    returned = next(r for r in final["task_runs"] if r["task_id"] == "out")
    assert '"hello": "world"' in returned["outputs"]["value"].replace('":"', '": "')


def test_subflow_waits_for_the_child_and_takes_its_outputs(client: TestClient) -> None:
    child = """\
id: child
namespace: demo
inputs:
  - {id: who, type: STRING}
tasks:
  - {id: greet, type: Return, format: "hi {{ inputs.who }}"}
outputs:
  - {id: greeting, value: "{{ outputs.greet.value }}"}
"""
    parent = """\
id: parent
namespace: demo
tasks:
  - id: call
    type: Subflow
    namespace: demo
    flowId: child
    inputs: {who: "{{ flow.id }}"}
  - id: use
    type: Log
    message: "child said {{ outputs.call.outputs.greeting }}"
  - id: failing
    type: Subflow
    namespace: demo
    flowId: broken
"""
    put_flow(client, child)
    put_flow(client, "id: broken\nnamespace: demo\ntasks:\n  - {id: f, type: Fail}\n")
    put_flow(client, parent)
    started = client.post("/api/v1/executions/demo/parent", json={}).json()
    final = wait_for_end(client, started["id"])
    assert final["state"] == "FAILED"  # transmitFailed defaults to true
    assert "child said hi parent" in logs(client, started["id"])
    calls = {r["task_id"]: r for r in final["task_runs"]}
    child_run = client.get(f"/api/v1/executions/{calls['call']['outputs']['executionId']}").json()
    assert child_run["trigger"]["parentExecutionId"] == started["id"]
    assert child_run["state"] == "SUCCESS"


def test_a_parent_waiting_for_its_subflow_stays_running_and_a_kill_takes_its_child(
    client: TestClient,
) -> None:
    put_flow(
        client, "id: slow\nnamespace: demo\ntasks:\n  - {id: s, type: Sleep, duration: PT3S}\n"
    )
    parent = (
        "id: waits\nnamespace: demo\ntasks:\n"
        "  - {id: call, type: Subflow, namespace: demo, flowId: slow}\n"
    )
    put_flow(client, parent)
    started = client.post("/api/v1/executions/demo/waits", json={}).json()
    deadline = time.monotonic() + 20
    parked = None
    while time.monotonic() < deadline:
        run = client.get(f"/api/v1/executions/{started['id']}").json()
        reasons = [entry.get("reason", "") for entry in run["state_history"]]
        if any("no worker held" in r for r in reasons):
            parked = run
            break
        time.sleep(0.05)
    assert parked is not None, "the parent never parked"
    assert parked["state"] == "RUNNING"  # as Kestra shows it, not PAUSED
    resume = client.post(f"/api/v1/executions/{started['id']}/resume", json={})
    assert resume.status_code == 409
    child_id = next(r for r in parked["task_runs"] if r["task_id"] == "call")["outputs"][
        "executionId"
    ]
    killed = client.post(f"/api/v1/executions/{started['id']}/kill")
    assert killed.status_code == 200, killed.text
    assert killed.json()["state"] == "KILLED"  # nobody held it: it ends at once
    assert wait_for_end(client, started["id"])["state"] == "KILLED"
    # The subflow run it started dies with it, as in Kestra.
    child = wait_for_end(client, child_id)
    assert child["state"] == "KILLED"
    assert any(
        f"parent {started['id']} was killed" in e.get("reason", "") for e in child["state_history"]
    )
