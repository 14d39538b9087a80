"""Properties the validator accepts, each run in a flow and checked by its outcome.

docs/compatibility.md (``## Task properties`` and the next two sections) names
these tests as the proof that a property is honoured; tests/domain/
test_property_table.py checks that every property has such a row.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from controlplane.domain.plan import FieldChange, FieldChangeKind, compute_plan
from controlplane.services.flows import Provenance
from controlplane.services.flows import put_flow as put_flow_directly
from controlplane.services.scheduler import Scheduler
from controlplane.store import kv as kv_store
from controlplane.store.tables import ExecutionRow
from tests.domain.test_plan import active, desired, only
from tests.services.test_engine import logs, put_flow, run, task_runs, wait_for_end


def _levels(client: TestClient, execution_id: str) -> dict[str, str]:
    lines = client.get(f"/api/v1/executions/{execution_id}/logs").json()
    return {line["message"]: line["level"] for line in lines}


# --- every task ------------------------------------------------------------------


def test_disabled_task_does_not_run(client: TestClient) -> None:
    put_flow(
        client,
        "id: off\nnamespace: demo\ntasks:\n"
        "  - {id: boom, type: Fail, disabled: true}\n"
        "  - {id: after, type: Log, message: ran}\n",
    )
    execution = run(client, "demo", "off")
    assert execution["state"] == "SUCCESS"
    assert "boom" not in task_runs(execution)
    assert "ran" in logs(client, execution["id"])


def test_run_if_false_skips_the_task(client: TestClient) -> None:
    put_flow(
        client,
        "id: maybe\nnamespace: demo\ninputs:\n  - {id: go, type: BOOLEAN}\ntasks:\n"
        "  - {id: boom, type: Fail, runIf: '{{ inputs.go }}'}\n"
        "  - {id: after, type: Log, message: after}\n",
    )
    skipped = run(client, "demo", "maybe", go=False)
    assert skipped["state"] == "SUCCESS"
    assert task_runs(skipped)["boom"]["state"] == "SKIPPED"
    assert run(client, "demo", "maybe", go=True)["state"] == "FAILED"


def test_log_to_file_writes_the_task_log_lines_to_a_file(client: TestClient) -> None:
    put_flow(
        client,
        "id: log-to-file\nnamespace: demo\ntasks:\n"
        "  - {id: hello, type: Log, message: 'Hello {{ flow.id }}', logToFile: true}\n"
        "  - {id: plain, type: Log, message: not in a file}\n",
    )
    execution = run(client, "demo", "log-to-file")
    assert execution["state"] == "SUCCESS"
    runs = task_runs(execution)
    written = Path(runs["hello"]["outputs"]["logFile"]).read_text(encoding="utf-8")
    assert "INFO Hello log-to-file" in written
    assert "not in a file" not in written
    assert "logFile" not in runs["plain"]["outputs"]


def test_descriptions_are_part_of_the_flow(client: TestClient) -> None:
    before = (
        "id: described\nnamespace: demo\ntasks:\n  - {id: a, type: Log, message: hi}\n"
        "triggers:\n  - {id: hook, type: Webhook, key: k}\n"
    )
    after = (
        before.replace("namespace: demo", "namespace: demo\ndescription: the flow")
        .replace("message: hi}", "message: hi, description: the task}")
        .replace("key: k}", "key: k, description: the trigger}")
    )
    change = only(compute_plan([active(before)], [desired(after)]), "demo", "described")
    assert set(change.fields) == {
        FieldChange("description", FieldChangeKind.ADDED, None, "the flow"),
        FieldChange("tasks[0].description", FieldChangeKind.ADDED, None, "the task"),
        FieldChange("triggers[0].description", FieldChangeKind.ADDED, None, "the trigger"),
    }
    put_flow(client, after)
    content = client.get("/api/v1/flows/demo/described").json()["content"]
    assert "the task" in content
    assert "the trigger" in content


# --- every flowable task, and the flow's own branches -------------------------------


def test_errors_and_finally_branches_run(client: TestClient) -> None:
    put_flow(
        client,
        "id: branches\nnamespace: demo\ntasks:\n"
        "  - id: group\n    type: Sequential\n"
        "    tasks: [{id: boom, type: Fail}]\n"
        "    errors: [{id: handled, type: Log, message: group-errors}]\n"
        "    finally: [{id: cleaned, type: Log, message: group-finally}]\n"
        "errors: [{id: flow-handled, type: Log, message: flow-errors}]\n"
        "finally: [{id: flow-cleaned, type: Log, message: flow-finally}]\n",
    )
    execution = run(client, "demo", "branches")
    assert execution["state"] == "FAILED"
    lines = logs(client, execution["id"])
    for line in ("group-errors", "group-finally", "flow-errors", "flow-finally"):
        assert line in lines
    put_flow(
        client,
        "id: calm\nnamespace: demo\ntasks:\n"
        "  - id: group\n    type: Sequential\n"
        "    tasks: [{id: fine, type: Log, message: fine}]\n"
        "    errors: [{id: handled, type: Log, message: group-errors}]\n"
        "    finally: [{id: cleaned, type: Log, message: group-finally}]\n",
    )
    calm = run(client, "demo", "calm")
    assert calm["state"] == "SUCCESS"
    assert "group-errors" not in logs(client, calm["id"])
    assert "group-finally" in logs(client, calm["id"])


# --- core tasks ----------------------------------------------------------------------


def test_log_and_echo_write_their_message_at_their_level(client: TestClient) -> None:
    put_flow(
        client,
        "id: levels\nnamespace: demo\ntasks:\n"
        "  - {id: log, type: Log, message: ['one {{ flow.id }}', two], level: WARN}\n"
        "  - {id: echo, type: Echo, format: 'echo {{ flow.id }}', level: ERROR}\n",
    )
    execution = run(client, "demo", "levels")
    assert execution["state"] == "SUCCESS"
    levels = _levels(client, execution["id"])
    assert levels["one levels"] == "WARN"
    assert levels["two"] == "WARN"
    assert levels["echo levels"] == "ERROR"


def test_fail_condition_and_error_message(client: TestClient) -> None:
    put_flow(
        client,
        "id: failing\nnamespace: demo\ninputs:\n  - {id: broken, type: BOOLEAN}\ntasks:\n"
        "  - id: check\n    type: Fail\n    condition: '{{ inputs.broken }}'\n"
        "    errorMessage: 'broken: {{ flow.id }}'\n",
    )
    assert run(client, "demo", "failing", broken=False)["state"] == "SUCCESS"
    failed = run(client, "demo", "failing", broken=True)
    assert failed["state"] == "FAILED"
    assert "broken: failing" in logs(client, failed["id"])


def test_output_values_are_rendered(client: TestClient) -> None:
    put_flow(
        client,
        "id: outs\nnamespace: demo\ntasks:\n"
        "  - {id: out, type: OutputValues, values: {greeting: 'hi {{ flow.id }}'}}\n",
    )
    execution = run(client, "demo", "outs")
    assert task_runs(execution)["out"]["outputs"] == {"values": {"greeting": "hi outs"}}


def test_resume_finds_the_paused_run_by_flow_and_fills_its_on_resume(
    client: TestClient,
) -> None:
    put_flow(
        client,
        "id: gate\nnamespace: demo\ntasks:\n"
        "  - {id: wait, type: Pause, onResume: [{id: answer, type: STRING}]}\n"
        "  - {id: show, type: Return, format: '{{ outputs.wait.onResume.answer }}'}\n",
    )
    paused = run(client, "demo", "gate")
    assert paused["state"] == "PAUSED"
    put_flow(
        client,
        "id: opener\nnamespace: demo\ntasks:\n"
        "  - id: go\n    type: Resume\n    namespace: demo\n    flowId: gate\n"
        "    inputs: {answer: 'yes from {{ flow.id }}'}\n",
    )
    opener = run(client, "demo", "opener")
    assert opener["state"] == "SUCCESS", logs(client, opener["id"])
    final = wait_for_end(client, paused["id"])
    assert task_runs(final)["show"]["outputs"]["value"] == "yes from opener"


def test_fetch_filters_by_tasks_id_level_and_flow(client: TestClient) -> None:
    put_flow(
        client,
        "id: fetcher\nnamespace: demo\ntasks:\n"
        "  - {id: a, type: Log, message: a-warn, level: WARN}\n"
        "  - {id: b, type: Log, message: b-info}\n"
        "  - {id: c, type: Log, message: c-warn, level: WARN}\n"
        "  - id: fetch\n    type: log.Fetch\n    executionId: '{{ execution.id }}'\n"
        "    namespace: demo\n    flowId: fetcher\n    tasksId: [a, b]\n    level: WARN\n"
        "  - id: elsewhere\n    type: log.Fetch\n    executionId: '{{ execution.id }}'\n"
        "    flowId: another-flow\n    allowFailure: true\n",
    )
    execution = run(client, "demo", "fetcher")
    runs = task_runs(execution)
    assert runs["fetch"]["outputs"]["size"] == 1
    lines = Path(runs["fetch"]["outputs"]["uri"]).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["a-warn"]
    # flowId must name the flow the execution belongs to.
    assert runs["elsewhere"]["state"] == "WARNING"


def test_state_tasks_scope_loop_values_and_missing_documents(client: TestClient) -> None:
    put_flow(
        client,
        "id: state-writer\nnamespace: demo\ntasks:\n"
        "  - {id: set, type: state.Set, name: shared, namespace: true, data: {v: 1}}\n",
    )
    assert run(client, "demo", "state-writer")["state"] == "SUCCESS"
    put_flow(
        client,
        "id: state-reader\nnamespace: demo\ntasks:\n"
        "  - {id: shared, type: state.Get, name: shared, namespace: true}\n"
        "  - {id: own, type: state.Get, name: shared}\n"
        "  - id: loop\n    type: ForEach\n    values: [a, b]\n    tasks:\n"
        "      - {id: per, type: state.Set, name: per-value, data: {v: '{{ taskrun.value }}'}}\n"
        "  - {id: whole, type: state.Get, name: per-value, taskrunValue: false}\n"
        "  - id: unloop\n    type: ForEach\n    values: [a]\n    tasks:\n"
        "      - {id: forget, type: state.Delete, name: per-value}\n"
        "  - {id: rest, type: state.Get, name: per-value, taskrunValue: false}\n"
        "  - {id: drop, type: state.Delete, name: shared, namespace: true}\n"
        "  - {id: dropped, type: state.Get, name: shared, namespace: true}\n"
        "  - {id: missing, type: state.Get, name: nothing, errorOnMissing: true,"
        " allowFailure: true}\n"
        "  - {id: gone, type: state.Delete, name: nothing, errorOnMissing: true,"
        " allowFailure: true}\n",
    )
    execution = run(client, "demo", "state-reader")
    runs = task_runs(execution)
    assert runs["shared"]["outputs"]["data"] == {"v": 1}
    assert runs["own"]["outputs"]["data"] == {}
    assert runs["whole"]["outputs"]["data"] == {"a": {"v": "a"}, "b": {"v": "b"}}
    assert runs["rest"]["outputs"]["data"] == {"b": {"v": "b"}}
    assert runs["drop"]["outputs"]["deleted"] is True
    assert runs["dropped"]["outputs"]["data"] == {}
    assert runs["missing"]["state"] == "WARNING"
    assert runs["gone"]["state"] == "WARNING"


def test_kv_set_ttl_and_description(client: TestClient, engine: Engine) -> None:
    put_flow(
        client,
        "id: kv-ttl\nnamespace: demo\ntasks:\n"
        "  - {id: brief, type: kv.Set, key: brief, value: soon-gone, ttl: PT0.001S}\n"
        "  - {id: nap, type: Sleep, duration: PT0.05S}\n"
        "  - {id: read, type: kv.Get, key: brief}\n"
        "  - {id: kept, type: kv.Set, key: kept, value: v, ttl: PT1H, description: my key}\n",
    )
    execution = run(client, "demo", "kv-ttl")
    assert execution["state"] == "SUCCESS"
    assert task_runs(execution)["read"]["outputs"] == {"value": None}
    with Session(engine) as session:
        entry = kv_store.get_entry(session, "demo", "kept")
        assert entry is not None
        assert entry.description == "my key"
        assert entry.expires_at is not None


# --- flowable tasks ----------------------------------------------------------------


def test_if_runs_then_or_else(client: TestClient) -> None:
    put_flow(
        client,
        "id: branch\nnamespace: demo\ninputs:\n  - {id: flag, type: BOOLEAN}\ntasks:\n"
        "  - id: choose\n    type: If\n    condition: '{{ inputs.flag }}'\n"
        "    then: [{id: yes, type: Log, message: yes}]\n"
        "    else: [{id: no, type: Log, message: no}]\n",
    )
    assert set(task_runs(run(client, "demo", "branch", flag=True))) == {"choose", "yes"}
    assert set(task_runs(run(client, "demo", "branch", flag=False))) == {"choose", "no"}


def test_switch_runs_the_matching_case_or_defaults(client: TestClient) -> None:
    put_flow(
        client,
        "id: switch\nnamespace: demo\ninputs:\n  - {id: pick, type: STRING}\ntasks:\n"
        "  - id: choose\n    type: Switch\n    value: '{{ inputs.pick }}'\n"
        "    cases:\n      a: [{id: case-a, type: Log, message: a}]\n"
        "    defaults: [{id: fallback, type: Log, message: other}]\n",
    )
    assert set(task_runs(run(client, "demo", "switch", pick="a"))) == {"choose", "case-a"}
    assert set(task_runs(run(client, "demo", "switch", pick="z"))) == {"choose", "fallback"}


# Fails when two copies run at once: the lock directory already exists.
_ONE_AT_A_TIME = (
    "{{id: {name}, type: shell.Commands, "
    "commands: ['mkdir lock-{name}', 'sleep 0.2', 'rmdir lock-{name}']}}"
)


def test_loops_run_once_per_value_within_their_limit(client: TestClient) -> None:
    put_flow(
        client,
        "id: loops\nnamespace: demo\ntasks:\n"
        "  - id: dir\n    type: WorkingDirectory\n    tasks:\n"
        '      - id: each\n        type: ForEach\n        values: \'["a", "b", "c"]\'\n'
        "        concurrencyLimit: 1\n        tasks:\n"
        f"          - {_ONE_AT_A_TIME.format(name='fe')}\n"
        "      - id: seq\n        type: EachSequential\n        value: [x, y]\n        tasks:\n"
        "          - {id: es, type: Return, format: '{{ taskrun.value }}'}\n"
        "      - id: par\n        type: EachParallel\n        value: [p, q, r]\n"
        "        concurrent: 1\n        tasks:\n"
        f"          - {_ONE_AT_A_TIME.format(name='ep')}\n",
    )
    execution = run(client, "demo", "loops")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    by_task: dict[str, list[str]] = {}
    for task_run in execution["task_runs"]:
        by_task.setdefault(task_run["task_id"], []).append(json.loads(task_run["value"] or "null"))
    assert sorted(by_task["fe"]) == ["a", "b", "c"]
    assert sorted(by_task["es"]) == ["x", "y"]
    assert sorted(by_task["ep"]) == ["p", "q", "r"]


def test_dag_runs_tasks_after_their_dependencies_within_concurrent(client: TestClient) -> None:
    put_flow(
        client,
        "id: dag\nnamespace: demo\ntasks:\n"
        "  - id: dir\n    type: WorkingDirectory\n    tasks:\n"
        "      - id: graph\n        type: Dag\n        concurrent: 1\n        tasks:\n"
        "          - task: {id: last, type: shell.Commands, commands: ['cat one two']}\n"
        "            dependsOn: [first, second]\n"
        "          - task: {id: first, type: shell.Commands, commands: "
        "['mkdir lock', 'sleep 0.2', 'rmdir lock', 'echo 1 > one']}\n"
        "          - task: {id: second, type: shell.Commands, commands: "
        "['mkdir lock', 'sleep 0.2', 'rmdir lock', 'echo 2 > two']}\n",
    )
    execution = run(client, "demo", "dag")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert set(task_runs(execution)) >= {"first", "second", "last"}


def test_allow_failure_task_ends_in_warning(client: TestClient) -> None:
    put_flow(
        client,
        "id: tolerant\nnamespace: demo\ntasks:\n"
        "  - id: try\n    type: AllowFailure\n    tasks: [{id: boom, type: Fail}]\n"
        "  - {id: after, type: Log, message: went on}\n",
    )
    execution = run(client, "demo", "tolerant")
    assert execution["state"] == "WARNING"
    assert task_runs(execution)["try"]["state"] == "WARNING"
    assert "went on" in logs(client, execution["id"])


def test_subflow_transmit_failed_and_inherit_labels(client: TestClient) -> None:
    put_flow(client, "id: child-fails\nnamespace: demo\ntasks:\n  - {id: boom, type: Fail}\n")
    put_flow(
        client, "id: child-ok\nnamespace: demo\ntasks:\n  - {id: ok, type: Log, message: ok}\n"
    )
    put_flow(
        client,
        "id: parent\nnamespace: demo\nlabels: {team: ops}\ntasks:\n"
        "  - {id: quiet, type: Subflow, namespace: demo, flowId: child-fails,"
        " transmitFailed: false}\n"
        "  - {id: heir, type: Subflow, namespace: demo, flowId: child-ok, inheritLabels: true}\n"
        "  - {id: loud, type: Subflow, namespace: demo, flowId: child-fails}\n",
    )
    execution = run(client, "demo", "parent")
    runs = task_runs(execution)
    assert runs["quiet"]["state"] == "SUCCESS"
    assert runs["quiet"]["outputs"]["state"] == "FAILED"
    assert runs["loud"]["state"] == "FAILED"
    child = client.get(f"/api/v1/executions/{runs['heir']['outputs']['executionId']}").json()
    assert child["labels"]["team"] == "ops"


def test_pause_delay_resumes_on_its_own(client: TestClient) -> None:
    put_flow(
        client,
        "id: delayed\nnamespace: demo\ntasks:\n"
        "  - {id: gate, type: Pause, delay: PT0.3S}\n"
        "  - {id: after, type: Log, message: after the delay}\n",
    )
    started = client.post("/api/v1/executions/demo/delayed", json={}).json()
    final = wait_for_end(client, started["id"])
    assert final["state"] == "SUCCESS"
    assert "after the delay" in logs(client, final["id"])


# --- HTTP and scripts --------------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    """Answers with what it received; /redirect redirects, /missing is 404, /slow waits."""

    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/final")
            self.end_headers()
            return
        if self.path == "/slow":
            time.sleep(1.5)
        self.send_response(404 if self.path == "/missing" else 200)
        self.end_headers()
        self.wfile.write(self.path.encode())

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        answer = f"{self.headers['Content-Type']}|{self.headers['X-Token']}|{body}"
        self.send_response(200)
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, *args: object) -> None:
        pass


def test_http_request_headers_form_content_type_options_and_allow_failed(
    client: TestClient,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        put_flow(
            client,
            f"id: http-options\nnamespace: demo\ntasks:\n"
            f"  - id: text\n    type: http.Request\n    uri: {base}/echo\n    method: POST\n"
            "    headers: {X-Token: abc}\n    contentType: text/plain\n    body: hi\n"
            f"  - id: form\n    type: http.Request\n    uri: {base}/echo\n    method: POST\n"
            "    formData: {a: '1'}\n"
            f"  - id: stay\n    type: http.Request\n    uri: {base}/redirect\n"
            "    options: {followRedirects: false}\n"
            f"  - {{id: missing, type: http.Request, uri: {base}/missing, allowFailed: true}}\n"
            f"  - id: missing-too\n    type: http.Request\n    uri: {base}/missing\n"
            "    options: {allowFailed: true}\n"
            f"  - id: slow\n    type: http.Request\n    uri: {base}/slow\n"
            "    options: {readTimeout: PT0.2S}\n    allowFailure: true\n",
        )
        execution = run(client, "demo", "http-options")
    finally:
        server.shutdown()
        server.server_close()
    runs = task_runs(execution)
    assert runs["text"]["outputs"]["body"] == "text/plain|abc|hi"
    assert runs["form"]["outputs"]["body"].endswith("|None|a=1")
    assert runs["stay"]["outputs"]["code"] == 302
    assert runs["missing"]["outputs"]["code"] == 404
    assert runs["missing-too"]["state"] == "SUCCESS"
    assert runs["slow"]["state"] == "WARNING"
    assert execution["state"] == "WARNING"


def test_script_properties(client: TestClient) -> None:
    put_flow(
        client,
        "id: scripts\nnamespace: demo\ntasks:\n"
        "  - id: env\n    type: shell.Commands\n    env: {GREETING: 'hi {{ flow.id }}'}\n"
        "    beforeCommands: ['PRE=before']\n"
        "    commands: ['echo \"$GREETING $PRE\"']\n"
        "  - id: bash\n    type: shell.Commands\n    interpreter: [/bin/bash, -c]\n"
        "    commands: ['echo \"bash=${BASH_VERSION:+yes}\"']\n"
        "  - id: keep-going\n    type: shell.Commands\n    failFast: false\n"
        "    commands: ['false', 'echo reached']\n"
        "  - id: stop\n    type: shell.Commands\n    allowFailure: true\n"
        "    commands: ['true', 'false', 'echo never']\n"
        "  - id: files\n    type: shell.Commands\n    inputFiles: {in.txt: 'from {{ flow.id }}'}\n"
        "    outputFiles: ['*.out']\n    commands: ['cat in.txt > result.out']\n"
        "  - {id: sh-script, type: shell.Script, script: 'echo sh-script'}\n"
        "  - {id: py-commands, type: python.Commands, commands: [\"python -c 'print(6 * 7)'\"]}\n"
        '  - {id: py-script, type: python.Script, script: \'print("py" + "-script")\'}\n',
    )
    execution = run(client, "demo", "scripts")
    lines = logs(client, execution["id"])
    assert execution["state"] == "WARNING", lines
    for expected in ("hi scripts before", "bash=yes", "reached", "sh-script", "42", "py-script"):
        assert expected in lines
    assert "never" not in lines
    runs = task_runs(execution)
    assert runs["stop"]["state"] == "WARNING"
    collected = runs["files"]["outputs"]["outputFiles"]["result.out"]
    assert Path(collected).read_text(encoding="utf-8").strip() == "from scripts"


def test_fail_fast_stops_at_the_first_command(client: TestClient) -> None:
    put_flow(
        client,
        "id: first-fails\nnamespace: demo\ntasks:\n"
        "  - {id: stop, type: shell.Commands, commands: ['false', 'echo never']}\n",
    )
    execution = run(client, "demo", "first-fails")
    assert execution["state"] == "FAILED"
    assert "never" not in logs(client, execution["id"])


@pytest.mark.parametrize(("fail_fast", "state"), [("true", "FAILED"), ("false", "SUCCESS")])
def test_a_templated_fail_fast_is_read_after_rendering(
    client: TestClient, fail_fast: str, state: str
) -> None:
    put_flow(
        client,
        "id: templated\nnamespace: demo\ninputs:\n  - {id: strict, type: STRING}\ntasks:\n"
        "  - {id: stop, type: shell.Commands, failFast: '{{ inputs.strict }}',"
        " commands: ['false', 'echo reached']}\n",
    )
    execution = run(client, "demo", "templated", strict=fail_fast)
    assert execution["state"] == state
    assert ("reached" in logs(client, execution["id"])) is (state == "SUCCESS")


# --- triggers ------------------------------------------------------------------------

_SCHEDULED = """\
id: scheduled
namespace: demo
inputs:
  - {id: who, type: STRING}
tasks:
  - {id: hello, type: Log, message: "{{ inputs.who }}"}
triggers:
  - {id: tick, type: Schedule, cron: "*/5 * * * *", inputs: {who: cron}, labels: {source: cron}}
  - {id: off, type: Schedule, cron: "* * * * *", disabled: true, inputs: {who: off}}
"""


def test_schedule_trigger_inputs_labels_and_disabled(engine: Engine) -> None:
    put_flow_directly(engine, "demo", "scheduled", _SCHEDULED, Provenance())
    Scheduler(engine).tick(datetime.now(UTC) + timedelta(minutes=11))
    with Session(engine) as session:
        fired = session.exec(select(ExecutionRow)).all()
    assert fired
    assert {r.trigger["id"] for r in fired} == {"tick"}
    assert {r.inputs["who"] for r in fired} == {"cron"}
    assert all(r.labels["source"] == "cron" for r in fired)


def test_webhook_trigger_inputs_and_disabled(client: TestClient) -> None:
    put_flow(
        client,
        "id: hooked\nnamespace: demo\ninputs:\n  - {id: who, type: STRING}\ntasks:\n"
        "  - {id: hello, type: Log, message: '{{ inputs.who }}'}\ntriggers:\n"
        "  - {id: hook, type: Webhook, key: on-key, inputs: {who: hook}}\n"
        "  - {id: off, type: Webhook, key: off-key, disabled: true, inputs: {who: off}}\n",
    )
    url = "/api/v1/executions/webhook/demo/hooked"
    assert client.post(f"{url}/off-key", json={}).status_code == 404
    started = client.post(f"{url}/on-key", json={})
    assert started.status_code == 201, started.text
    assert started.json()["trigger"]["id"] == "hook"
    assert started.json()["inputs"] == {"who": "hook"}


def test_webhook_key_template_is_rendered(client: TestClient) -> None:
    put_flow(
        client,
        "id: dynamic\nnamespace: demo\ntasks:\n  - {id: hello, type: Log, message: hi}\n"
        "triggers:\n  - {id: hook, type: Webhook, key: '{{ flow.id }}'}\n",
    )
    assert (
        client.post("/api/v1/executions/webhook/demo/dynamic/dynamic", json={}).status_code == 201
    )


def test_flow_trigger_states_and_disabled(client: TestClient) -> None:
    put_flow(
        client,
        "id: listener\nnamespace: demo\ninputs:\n  - {id: upstream, type: STRING}\ntasks:\n"
        "  - {id: hello, type: Log, message: '{{ inputs.upstream }}'}\ntriggers:\n"
        "  - id: on-failure\n    type: Flow\n    states: [FAILED]\n"
        "    inputs: {upstream: '{{ trigger.executionId }}'}\n"
        "    conditions: [{type: ExecutionFlow, namespace: demo, flowId: upstream}]\n"
        "  - id: off\n    type: Flow\n    disabled: true\n    states: [FAILED]\n"
        "    conditions: [{type: ExecutionFlow, namespace: demo, flowId: upstream}]\n",
    )
    put_flow(client, "id: upstream\nnamespace: demo\ntasks:\n  - {id: boom, type: Fail}\n")
    upstream = run(client, "demo", "upstream")
    assert upstream["state"] == "FAILED"
    listened: list[dict[str, Any]] = []
    for _ in range(200):
        listened = client.get("/api/v1/executions", params={"flow_id": "listener"}).json()
        if listened:
            break
        time.sleep(0.02)
    assert [e["trigger"]["id"] for e in listened] == ["on-failure"]
    final = wait_for_end(client, str(listened[0]["id"]))
    assert final["inputs"] == {"upstream": upstream["id"]}


# --- the flow ------------------------------------------------------------------------


def test_flow_labels_variables_and_disabled(client: TestClient) -> None:
    source = (
        "id: flowwide\nnamespace: demo\nlabels: {team: ops}\nvariables: {greeting: hi}\n"
        "tasks:\n  - {id: say, type: Log, message: '{{ vars.greeting }} {{ labels.team }}'}\n"
    )
    put_flow(client, source)
    execution = run(client, "demo", "flowwide")
    assert execution["labels"]["team"] == "ops"
    assert "hi ops" in logs(client, execution["id"])
    put_flow(client, source + "disabled: true\n")
    refused = client.post("/api/v1/executions/demo/flowwide", json={"inputs": {}})
    assert refused.status_code >= 400
    assert "disabled" in refused.text


def test_plugin_defaults_fill_task_properties(client: TestClient) -> None:
    put_flow(
        client,
        "id: defaulted\nnamespace: demo\npluginDefaults:\n  - {type: Log, values: {level: WARN}}\n"
        "tasks:\n  - {id: say, type: Log, message: defaulted}\n",
    )
    execution = run(client, "demo", "defaulted")
    assert _levels(client, execution["id"])["defaulted"] == "WARN"
