"""Log followers (SSE) are served from one async notifier against a live uvicorn server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.api import create_app
from controlplane.services import executions as execution_service
from controlplane.services.flows import Provenance, put_flow
from controlplane.services.log_follow import LogNotifier
from controlplane.store.tables import LogRow
from tests.conftest import ADMIN_TOKEN, bearer
from tests.live_server import live_settings, serve_in_thread

FLOW = "id: tail\nnamespace: team.logs\ntasks:\n  - {id: p, type: Pause}\n"
FOLLOWERS = 500


@dataclass
class Live:
    """A uvicorn server in a thread, its app and base URL."""

    app: FastAPI
    base: str


@pytest.fixture
def live(engine: Engine, tmp_path: Path) -> Iterator[Live]:
    """The API on a real uvicorn in a thread, with no embedded worker (runs stay QUEUED)."""
    settings = live_settings(tmp_path, database_url=str(engine.url))
    app = create_app(settings, engine=engine, workers=0)
    app.state.log_notifier = LogNotifier(engine, poll_seconds=0.1, per_owner=FOLLOWERS + 10)
    with serve_in_thread(app, backlog=2048, lifespan="auto") as base:
        yield Live(app, base)


def _until(what: str, predicate: Callable[[], bool], seconds: float = 60) -> None:
    """Wait for ``predicate``; fail naming ``what`` past the deadline (a hang guard only)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.05)


def _queued_run(engine: Engine) -> str:
    put_flow(engine, "team.logs", "tail", FLOW, Provenance(actor="test"))
    return execution_service.create_execution(engine, "team.logs", "tail", inputs={}).id


def _write_lines(engine: Engine, execution_id: str, *messages: str) -> None:
    with Session(engine) as session:
        session.add_all(
            LogRow(execution_id=execution_id, level="INFO", message=m) for m in messages
        )
        session.commit()


async def _follow(client: httpx.AsyncClient, url: str, opened: asyncio.Event) -> list[str]:
    """Open one follower; return the events it saw until the stream closed."""
    events: list[str] = []
    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        opened.set()
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
            elif line.startswith("data: ") and events and events[-1] in {"log", "end"}:
                events.append(line)
    return events


def test_500_followers_share_one_poller_and_healthz_answers_meanwhile(
    live: Live, engine: Engine
) -> None:
    run_id = _queued_run(engine)
    _write_lines(engine, run_id, "before")
    notifier: LogNotifier = live.app.state.log_notifier
    url = f"/api/v1/executions/{run_id}/logs/follow"

    async def scenario() -> tuple[list[list[str]], float]:
        limits = httpx.Limits(max_connections=FOLLOWERS + 20, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=live.base, headers=bearer(ADMIN_TOKEN), limits=limits, timeout=120
        ) as client:
            opened = [asyncio.Event() for _ in range(FOLLOWERS)]
            followers = [asyncio.create_task(_follow(client, url, o)) for o in opened]
            await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 120)
            await asyncio.to_thread(
                _until, "every follower subscribed", lambda: notifier.followers() == FOLLOWERS
            )
            assert notifier.pollers() == 1
            async with httpx.AsyncClient(base_url=live.base, timeout=30) as probe:
                started = time.perf_counter()
                health = await probe.get("/healthz")
                latency = time.perf_counter() - started
            assert health.status_code == 200
            await asyncio.to_thread(_write_lines, engine, run_id, "after")
            await asyncio.to_thread(execution_service.kill_execution, engine, run_id, actor="test")
            return await asyncio.wait_for(asyncio.gather(*followers), 120), latency

    seen, latency = asyncio.run(scenario())
    print(f"/healthz with {FOLLOWERS} followers open: {latency * 1000:.1f} ms")  # noqa: T201
    for events in seen:
        messages = [json.loads(e[6:])["message"] for e in events if e.startswith('data: {"pos')]
        assert messages == ["before", "after"], events
        assert events[-2:] == ["end", 'data: {"state": "KILLED"}'], events
    _until("every slot released", lambda: not notifier.followers() and not notifier.pollers())


def test_followers_past_the_cap_get_429_and_a_disconnect_frees_a_slot(
    live: Live, engine: Engine
) -> None:
    run_id = _queued_run(engine)
    live.app.state.log_notifier = notifier = LogNotifier(engine, poll_seconds=0.1, per_owner=2)
    url = f"{live.base}/api/v1/executions/{run_id}/logs/follow"
    headers = bearer(ADMIN_TOKEN)
    with (
        httpx.Client(headers=headers, timeout=30) as one,
        httpx.Client(headers=headers, timeout=30) as two,
        httpx.Client(headers=headers, timeout=30) as three,
    ):
        first = one.send(one.build_request("GET", url), stream=True)
        second = two.send(two.build_request("GET", url), stream=True)
        assert (first.status_code, second.status_code) == (200, 200)
        refused = three.get(url)
        assert refused.status_code == 429
        assert refused.json()["code"] == "too_many_requests"
        assert refused.headers["Retry-After"]
        first.close()
        one.close()  # the connection goes away: the server releases the slot
        _until("the closed follower's slot released", lambda: notifier.followers() <= 1)
        again = three.send(three.build_request("GET", url), stream=True)
        assert again.status_code == 200
        again.close()
        second.close()


def test_a_follower_resumes_after_last_event_id(live: Live, engine: Engine) -> None:
    run_id = _queued_run(engine)
    _write_lines(engine, run_id, "one", "two", "three")
    execution_service.kill_execution(engine, run_id, actor="test")
    url = f"{live.base}/api/v1/executions/{run_id}/logs/follow"
    with httpx.Client(headers=bearer(ADMIN_TOKEN), timeout=30) as client:
        everything = client.get(url).text
        ids = [int(line[4:]) for line in everything.splitlines() if line.startswith("id: ")]
        assert len(ids) == 3
        rest = client.get(url, headers={"Last-Event-ID": str(ids[0])}).text
    assert '"message":"one"' not in rest
    assert '"message":"two"' in rest
    assert '"message":"three"' in rest
    assert rest.rstrip().endswith('data: {"state": "KILLED"}')
