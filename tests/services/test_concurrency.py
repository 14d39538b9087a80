"""A flow's concurrency limit holds even with several workers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from controlplane.api import create_app
from controlplane.settings import Settings
from tests.conftest import ADMIN_TOKEN, bearer
from tests.services.test_engine import put_flow, wait_for_end


def running_window(execution: dict[str, object]) -> tuple[datetime, datetime]:
    history = execution["state_history"]
    assert isinstance(history, list)
    started = next(h["date"] for h in history if h["state"] == "RUNNING")
    return datetime.fromisoformat(started), datetime.fromisoformat(str(execution["ended_at"]))


def test_queue_behaviour_runs_one_at_a_time_with_two_workers(
    engine: Engine, tmp_path: Path, corpus: Path
) -> None:
    settings = Settings(
        database_url=str(engine.url),
        data_dir=tmp_path,
        poll_sources=False,
        admin_token=SecretStr(ADMIN_TOKEN),
    )
    app = create_app(settings, engine=engine, workers=2)
    with TestClient(app, headers=bearer(ADMIN_TOKEN)) as client:
        ns, flow_id = put_flow(client, (corpus / "flow-concurrency-queue.yml").read_text())
        ids = [
            client.post(f"/api/v1/executions/{ns}/{flow_id}", json={}).json()["id"]
            for _ in range(2)
        ]
        first, second = (wait_for_end(client, i) for i in ids)
    assert first["state"] == second["state"] == "SUCCESS"
    (start_a, end_a), (start_b, end_b) = running_window(first), running_window(second)
    assert start_b >= end_a or start_a >= end_b  # never both running


def test_cancel_behaviour_cancels_a_run_over_the_limit(client: TestClient, corpus: Path) -> None:
    ns, flow_id = put_flow(client, (corpus / "flow-concurrency-cancel-pause.yml").read_text())
    first = client.post(f"/api/v1/executions/{ns}/{flow_id}", json={}).json()
    deadline_state = wait_for_state(client, first["id"], "PAUSED")
    assert deadline_state == "PAUSED"
    second = client.post(f"/api/v1/executions/{ns}/{flow_id}", json={}).json()
    assert second["state"] == "CANCELLED"
    assert "concurrency limit 1 reached" in second["state_history"][-1]["reason"]
    assert wait_for_end(client, first["id"])["state"] == "SUCCESS"


def wait_for_state(client: TestClient, execution_id: str, state: str) -> str:
    import time  # noqa: PLC0415

    deadline = time.monotonic() + 20
    current = ""
    while time.monotonic() < deadline:
        current = client.get(f"/api/v1/executions/{execution_id}").json()["state"]
        if current == state:
            break
        time.sleep(0.05)
    return current
