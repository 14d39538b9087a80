"""kill -9 of a worker mid-task loses no execution: another worker takes it over.

Real processes: two `flowplane worker` processes share the test database with
the API; the first is killed with SIGKILL while a task runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from controlplane.api import create_app
from controlplane.settings import Settings
from tests.conftest import ADMIN_TOKEN, bearer

FLOW = """\
id: slow
namespace: demo
tasks:
  - id: first
    type: Return
    format: before the crash
  - id: long
    type: shell.Commands
    commands:
      - sleep 3
      - echo finished
  - id: last
    type: Log
    message: "{{ outputs.first.value }} / done"
"""


def start_worker(engine: Engine, data_dir: Path, sandbox: str = "auto") -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FLOWPLANE_SANDBOX": sandbox,
        "FLOWPLANE_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "FLOWPLANE_DATA_DIR": str(data_dir),
        "FLOWPLANE_LEASE_SECONDS": "1.5",
        "FLOWPLANE_LOG_JSON": "true",
    }
    flowplane = Path(sys.executable).parent / "flowplane"
    return subprocess.Popen([str(flowplane), "worker"], env=env, stdout=subprocess.DEVNULL)


def wait_until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail("condition not reached in time")


def test_kill_9_mid_task_loses_nothing(engine: Engine, tmp_path: Path) -> None:
    app = create_app(
        Settings(
            database_url=str(engine.url), data_dir=tmp_path, admin_token=SecretStr(ADMIN_TOKEN)
        ),
        engine=engine,
        workers=0,
    )
    with TestClient(app, headers=bearer(ADMIN_TOKEN)) as client:
        client.put("/api/v1/flows/demo/slow", json={"content": FLOW})
        execution_id = client.post("/api/v1/executions/demo/slow", json={}).json()["id"]
        url = f"/api/v1/executions/{execution_id}"

        def long_task_running() -> bool:
            runs = client.get(url).json()["task_runs"]
            return any(r["task_id"] == "long" and r["state"] == "RUNNING" for r in runs)

        first = start_worker(engine, tmp_path)
        try:
            wait_until(long_task_running)
            first.send_signal(signal.SIGKILL)
            first.wait()
        finally:
            first.kill()
        assert client.get(url).json()["state"] == "RUNNING"

        second = start_worker(engine, tmp_path)
        try:
            wait_until(lambda: client.get(url).json()["state"] == "SUCCESS", timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
        body = client.get(url).json()
        runs = {r["task_id"]: r for r in body["task_runs"]}
        assert runs["first"]["attempt"] == 1  # finished work is not redone
        assert runs["long"]["attempt"] == 2  # the interrupted task ran again
        assert any("taken over" in h.get("reason", "") for h in body["state_history"])
        messages = [line["message"] for line in client.get(url + "/logs").json()]
        assert "before the crash / done" in messages


POISON = """\
id: poison
namespace: demo
tasks:
  - id: crash
    type: shell.Commands
    commands:
      # Kills the worker process that runs it, every time (the sandbox is off
      # for this test, so the script can see its parent).
      - kill -9 $PPID
"""


def test_a_run_that_kills_every_worker_ends_failed(engine: Engine, tmp_path: Path) -> None:
    app = create_app(
        Settings(
            database_url=str(engine.url), data_dir=tmp_path, admin_token=SecretStr(ADMIN_TOKEN)
        ),
        engine=engine,
        workers=0,
    )
    with TestClient(app, headers=bearer(ADMIN_TOKEN)) as client:
        client.put("/api/v1/flows/demo/poison", json={"content": POISON})
        client.put("/api/v1/flows/demo/slow", json={"content": FLOW})
        poison_id = client.post("/api/v1/executions/demo/poison", json={}).json()["id"]
        url = f"/api/v1/executions/{poison_id}"
        crashes = 0
        # Restart a standalone worker each time the poison run kills it, as a
        # process supervisor would, until the run is given up.
        while client.get(url).json()["state"] != "FAILED":
            assert crashes < 6, "the poison run was never given up"
            worker = start_worker(engine, tmp_path, sandbox="off")
            try:
                wait_until(
                    lambda w=worker: (
                        w.poll() is not None or client.get(url).json()["state"] == "FAILED"
                    ),
                    timeout=60,
                )
            finally:
                worker.kill()
                worker.wait()
            crashes += 1
        body = client.get(url).json()
        assert any("lost its worker 3 times" in h.get("reason", "") for h in body["state_history"])
        # The next worker is not taken down by it and runs other work.
        healthy_id = client.post("/api/v1/executions/demo/slow", json={}).json()["id"]
        worker = start_worker(engine, tmp_path, sandbox="off")
        try:
            wait_until(
                lambda: client.get(f"/api/v1/executions/{healthy_id}").json()["state"] == "SUCCESS",
                timeout=60,
            )
            assert worker.poll() is None
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
