"""Batched writes (services/worker/batch.py): a kill -9 mid-batch loses nothing
committed and duplicates nothing.

A standalone worker runs a flow whose third task kills that worker (once: a
marker file remembers) while the task's start and log lines are still queued.
A second worker takes the run over and replays it from what was committed.
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Connection, Engine, event
from sqlmodel import Session

from controlplane.api import create_app
from controlplane.domain.fields import State
from controlplane.services.executions import create_execution
from controlplane.services.flows import Provenance, put_flow
from controlplane.services.worker.worker import Worker
from controlplane.settings import Settings
from controlplane.store import executions as store
from controlplane.store.tables import LogRow, TaskRunRow
from tests.conftest import ADMIN_TOKEN, bearer
from tests.services.test_worker_crash import start_worker, wait_until

FLOW = """\
id: batched
namespace: demo
tasks:
  - id: first
    type: Return
    format: committed before the crash
  - id: said
    type: Log
    message: "{{ outputs.first.value }}"
  - id: crash
    type: shell.Commands
    env:
      MARK: "__MARK__"
    commands:
      - echo "queued, maybe never committed"
      # The first attempt kills the worker running it (the sandbox is off for
      # this test, so the script can see its parent); the replay goes on.
      - if [ ! -e "$MARK" ]; then touch "$MARK"; kill -9 $PPID; sleep 5; fi
      - echo "second attempt"
  - id: last
    type: Log
    message: done
"""


def test_kill_9_mid_batch_loses_nothing_committed_and_duplicates_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    app = create_app(
        Settings(
            database_url=str(engine.url), data_dir=tmp_path, admin_token=SecretStr(ADMIN_TOKEN)
        ),
        engine=engine,
        workers=0,
    )
    mark = tmp_path / "killed-once"
    with TestClient(app, headers=bearer(ADMIN_TOKEN)) as client:
        flow = FLOW.replace("__MARK__", str(mark))
        assert client.put("/api/v1/flows/demo/batched", json={"content": flow}).status_code == 201
        execution_id = client.post("/api/v1/executions/demo/batched", json={}).json()["id"]
        url = f"/api/v1/executions/{execution_id}"

        first = start_worker(engine, tmp_path, sandbox="off")
        try:
            wait_until(lambda: first.poll() is not None, timeout=60)
        finally:
            first.kill()
            first.wait()
        assert first.returncode == -signal.SIGKILL
        assert mark.exists()
        before = client.get(url).json()
        assert before["state"] == "RUNNING"
        committed = {r["task_id"]: r for r in before["task_runs"]}
        # The tasks that ended before the crash were committed with their logs.
        assert committed["first"]["state"] == "SUCCESS"
        assert committed["said"]["state"] == "SUCCESS"

        second = start_worker(engine, tmp_path, sandbox="off")
        try:
            wait_until(lambda: client.get(url).json()["state"] == "SUCCESS", timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
        body = client.get(url).json()
        logs = client.get(f"{url}/logs").json()

    runs = Counter(r["task_id"] for r in body["task_runs"])
    assert runs == {"first": 1, "said": 1, "crash": 1, "last": 1}, body["task_runs"]
    by_task = {r["task_id"]: r for r in body["task_runs"]}
    assert by_task["first"]["attempt"] == 1  # committed work is not redone
    assert by_task["said"]["outputs"] == committed["said"]["outputs"]
    messages = Counter(line["message"] for line in logs)
    assert messages["committed before the crash"] == 1
    assert messages["second attempt"] == 1
    assert messages["done"] == 1


PURE = """\
id: pure
namespace: demo
tasks:
  - id: values
    type: OutputValues
    values:
      answer: "42"
  - id: said
    type: Log
    message: "got {{ outputs.values['values'].answer }}"
  - id: done
    type: Return
    format: "{{ outputs.values['values'].answer }} done"
"""


def _queue(engine: Engine, flow_id: str, source: str) -> str:
    """Store ``source`` as demo/``flow_id`` and queue one run of it."""
    put_flow(engine, "demo", flow_id, source, Provenance())
    return create_execution(engine, "demo", flow_id, inputs={}).id


def _ended(engine: Engine, execution_id: str) -> tuple[str, dict[str, TaskRunRow], list[LogRow]]:
    """The run's state, its task runs by task id, and its log lines in order."""
    with Session(engine) as session:
        row = store.get_execution(session, execution_id)
        assert row is not None
        runs = {run.task_id: run for run in store.task_runs_of(session, execution_id)}
        return row.state, runs, list(store.logs_of(session, execution_id))


def test_a_run_of_tasks_without_side_effects_commits_twice(engine: Engine, tmp_path: Path) -> None:
    """Claim, then the end: the three task runs and the log line commit with the run's end."""
    execution_id = _queue(engine, "pure", PURE)
    commits: list[str] = []

    def count(_connection: Connection) -> None:
        commits.append(threading.current_thread().name)

    event.listen(engine, "commit", count)
    try:
        assert Worker(engine=engine, data_dir=tmp_path).run_once()
    finally:
        event.remove(engine, "commit", count)
    assert len(commits) == 2, commits
    state, runs, logs = _ended(engine, execution_id)
    assert state == State.SUCCESS.value
    assert {task: run.state for task, run in runs.items()} == {
        "values": "SUCCESS",
        "said": "SUCCESS",
        "done": "SUCCESS",
    }
    assert runs["done"].outputs == {"value": "42 done"}
    assert [line.message for line in logs] == ["got 42"]


BROKEN_OUTPUT = """\
id: broken-output
namespace: demo
tasks:
  - id: said
    type: Log
    message: first line
outputs:
  - id: answer
    type: STRING
    value: "{{ outputs.missing.value }}"
"""


def test_why_a_run_failed_is_logged_after_its_queued_lines(engine: Engine, tmp_path: Path) -> None:
    """The run-level error follows the task lines that were still queued when the run failed."""
    execution_id = _queue(engine, "broken-output", BROKEN_OUTPUT)
    assert Worker(engine=engine, data_dir=tmp_path).run_once()
    state, _, logs = _ended(engine, execution_id)
    assert state == State.FAILED.value
    lines = [(line.level, line.message) for line in logs]
    assert lines[0] == ("INFO", "first line")
    assert lines[1][0] == "ERROR"
    assert lines[1][1].startswith("the execution failed: outputs.answer:"), lines
    assert len(lines) == 2
