"""Restart, backfill and the SSE log follow through the API, with their roles."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import token_headers
from tests.services.test_engine import put_flow, wait_for_end

FLAKY = """\
id: flaky
namespace: demo
tasks:
  - {id: first, type: Return, format: kept}
  # Fails on its first attempt; a restart runs it again as attempt 2.
  - {id: check, type: shell.Commands, commands: ["test {{ taskrun.attemptsCount }} -gt 1"]}
"""

HOURLY = """\
id: hourly
namespace: demo
tasks:
  - {id: a, type: Log, message: "for {{ trigger.date }}"}
triggers:
  - {id: every-hour, type: Schedule, cron: "0 * * * *"}
"""


def sse_events(body: str) -> list[dict[str, Any]]:
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append({**fields, "data": json.loads(fields["data"])})
    return events


def test_restart_through_the_api(client: TestClient) -> None:
    put_flow(client, FLAKY)
    started = client.post("/api/v1/executions/demo/flaky", json={}).json()
    failed = wait_for_end(client, started["id"])
    assert failed["state"] == "FAILED"

    viewer = token_headers(client, "vera", role="viewer")
    url = f"/api/v1/executions/{started['id']}/restart"
    assert client.post(url, headers=viewer).status_code == 403

    editor = token_headers(client, "eddie", role="editor")
    response = client.post(url, headers=editor)
    assert response.status_code == 200, response.text
    assert response.json()["state_history"][-1]["reason"] == "restarted by eddie"
    final = wait_for_end(client, started["id"])
    assert final["state"] == "SUCCESS"
    runs = {r["task_id"]: r for r in final["task_runs"]}
    assert runs["check"]["attempt"] == 2
    assert runs["first"]["attempt"] == 1

    again = client.post(url, headers=editor)
    assert again.status_code == 409
    assert client.post("/api/v1/executions/nope/restart").status_code == 404


def test_backfill_through_the_api(client: TestClient) -> None:
    put_flow(client, HOURLY)
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    body = {
        "trigger_id": "every-hour",
        "start": base.isoformat(),
        "end": (base + timedelta(hours=2)).isoformat(),
    }
    url = "/api/v1/executions/demo/hourly/backfill"
    assert (
        client.post(url, json=body, headers=token_headers(client, "v", "viewer")).status_code == 403
    )
    created = client.post(url, json=body)
    assert created.status_code == 201, created.text
    dates = [datetime.fromisoformat(e["trigger"]["date"]) for e in created.json()]
    assert dates == [base, base + timedelta(hours=1), base + timedelta(hours=2)]
    assert client.post(url, json=body).json() == []
    missing = client.post(url, json={**body, "trigger_id": "nope"})
    assert missing.status_code == 404
    future = client.post(url, json={**body, "end": (base + timedelta(days=2)).isoformat()})
    assert future.status_code == 400
    for execution in created.json():
        assert wait_for_end(client, execution["id"])["state"] == "SUCCESS"


def test_follow_streams_log_events_then_the_end(client: TestClient) -> None:
    put_flow(
        client,
        "id: chatty\nnamespace: demo\ntasks:\n"
        "  - {id: one, type: Log, message: first}\n"
        "  - {id: nap, type: Sleep, duration: PT0.3S}\n"
        "  - {id: two, type: Log, message: second}\n",
    )
    started = client.post("/api/v1/executions/demo/chatty", json={}).json()
    viewer = token_headers(client, "vera", role="viewer")
    url = f"/api/v1/executions/{started['id']}/logs/follow"
    with client.stream("GET", url, headers=viewer) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    events = sse_events(body)
    logs = [e for e in events if e["event"] == "log"]
    assert [e["data"]["message"] for e in logs] == ["first", "second"]
    assert [int(e["id"]) for e in logs] == [e["data"]["position"] for e in logs]
    assert events[-1] == {"event": "end", "data": {"state": "SUCCESS"}}

    # Reconnecting with Last-Event-ID resumes after that line.
    resumed = client.get(url, headers={**viewer, "Last-Event-ID": logs[0]["id"]})
    assert [e["data"]["message"] for e in sse_events(resumed.text) if e["event"] == "log"] == [
        "second"
    ]
    assert client.get("/api/v1/executions/nope/logs/follow").status_code == 404
