"""/readyz fails, naming the loop, when a background loop or an embedded worker is dead."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from controlplane.services.loop import LoopRegistry
from controlplane.services.worker.worker import Worker


def wait_until(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    pytest.fail(f"{what}: not reached within {timeout} s")


def loops(client: TestClient) -> LoopRegistry:
    registry: LoopRegistry = client.app.state.loops  # type: ignore[attr-defined]
    return registry


def test_readyz_is_ok_while_every_loop_runs(client: TestClient) -> None:
    names = loops(client).names()
    assert "scheduler" in names
    assert any(name.startswith("worker:") for name in names)
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_names_a_stopped_scheduler(client: TestClient) -> None:
    loops(client).get("scheduler").stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["loops"] == {"scheduler": "dead"}
    assert client.get("/healthz").status_code == 200  # liveness is not readiness


def test_readyz_names_a_dead_embedded_worker(client: TestClient) -> None:
    workers: list[Worker] = client.app.state.workers  # type: ignore[attr-defined]
    worker = workers[0]
    worker.stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["loops"] == {f"worker:{worker.worker_id}": "dead"}
    assert client.get("/healthz").status_code == 200


def test_a_loop_that_stopped_making_progress_is_stale(client: TestClient) -> None:
    scheduler = loops(client).get("scheduler")
    wait_until(lambda: scheduler.last_success is not None, "a scheduler tick")
    assert loops(client).problems() == {}
    later = time.time() + scheduler.stale_after + 1
    assert loops(client).problems(now=later)["scheduler"] == "stale"


def test_metrics_show_the_last_success_of_each_loop(client: TestClient) -> None:
    scheduler = loops(client).get("scheduler")
    wait_until(lambda: scheduler.last_success is not None, "a scheduler tick")
    body = client.get("/metrics").text
    lines = [
        line
        for line in body.splitlines()
        if line.startswith('flowplane_loop_last_success_timestamp_seconds{loop="scheduler"}')
    ]
    assert len(lines) == 1
    assert float(lines[0].split()[-1]) > 0
    assert "flowplane_loop_failures" in body
