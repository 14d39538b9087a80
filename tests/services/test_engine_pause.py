"""A Pause's duration or timeout ends it through the worker loop, per its behavior."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from tests.services.test_engine import logs, put_flow, wait_for_end

PAUSE = """\
id: timed
namespace: demo
tasks:
  - id: gate
    type: Pause
    {limit}
  - id: after
    type: Log
    message: after the pause
"""


def start_paused_run(client: TestClient, limit: str) -> dict:
    put_flow(client, PAUSE.format(limit=limit))
    started = client.post("/api/v1/executions/demo/timed", json={}).json()
    return wait_for_end(client, started["id"])


def pause_state(execution: dict) -> str:
    return next(r["state"] for r in execution["task_runs"] if r["task_id"] == "gate")


def test_pause_duration_resume_continues(client: TestClient) -> None:
    final = start_paused_run(client, "pauseDuration: PT0.3S")
    assert final["state"] == "SUCCESS"
    assert pause_state(final) == "SUCCESS"
    assert "after the pause" in logs(client, final["id"])
    # The run was parked, then claimed again once the duration passed.
    reasons = [entry.get("reason") for entry in final["state_history"]]
    assert "pause elapsed" in reasons


def test_pause_duration_warn_continues_in_warning(client: TestClient) -> None:
    final = start_paused_run(client, "pauseDuration: PT0.3S\n    behavior: WARN")
    assert final["state"] == "WARNING"
    assert pause_state(final) == "WARNING"
    assert "after the pause" in logs(client, final["id"])


def test_pause_duration_fail_fails(client: TestClient) -> None:
    final = start_paused_run(client, "pauseDuration: PT0.3S\n    behavior: FAIL")
    assert final["state"] == "FAILED"
    assert pause_state(final) == "FAILED"
    assert "after the pause" not in logs(client, final["id"])


def test_pause_duration_cancel_cancels_the_execution(client: TestClient) -> None:
    final = start_paused_run(client, "pauseDuration: PT0.3S\n    behavior: CANCEL")
    assert final["state"] == "CANCELLED"
    assert pause_state(final) == "CANCELLED"
    assert "after the pause" not in logs(client, final["id"])


def test_pause_timeout_without_duration_fails(client: TestClient) -> None:
    final = start_paused_run(client, "timeout: PT0.3S\n    behavior: RESUME")
    assert final["state"] == "FAILED"
    assert pause_state(final) == "FAILED"
    assert any("timeout of PT0.3S passed" in line for line in logs(client, final["id"]))


def test_resume_before_the_timeout_succeeds(client: TestClient) -> None:
    put_flow(client, PAUSE.format(limit="timeout: PT30S"))
    started = client.post("/api/v1/executions/demo/timed", json={"inputs": {}}).json()
    for _ in range(200):
        state = client.get(f"/api/v1/executions/{started['id']}").json()["state"]
        if state == "PAUSED":
            break
        time.sleep(0.05)
    resumed = client.post(f"/api/v1/executions/{started['id']}/resume", json={})
    assert resumed.status_code == 200, resumed.text
    final = wait_for_end(client, started["id"])
    assert final["state"] == "SUCCESS"
    assert pause_state(final) == "SUCCESS"
