"""The API read path: cached tokens revoked at once, one query per flow read, 304s, log pages."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlmodel import Session

from controlplane.errors import UnauthorizedError
from controlplane.services import executions as execution_service
from controlplane.services.access import TokenCache, create_token, revoke_token
from controlplane.store.tables import LogRow
from tests.conftest import bearer

FLOW = "id: hello\nnamespace: team.read\ntasks:\n  - {id: p, type: Pause}\n"
FLOW_URL = "/api/v1/flows/team.read/hello"


def _viewer(client: TestClient, name: str = "reader") -> tuple[str, dict[str, str]]:
    made = client.post("/api/v1/tokens", json={"name": name, "role": "viewer"})
    assert made.status_code == 201, made.text
    return made.json()["id"], bearer(made.json()["token"])


def _cached(client: TestClient) -> int:
    """How many tokens the app's cache holds."""
    cache = client.app.state.token_cache  # type: ignore[attr-defined]
    return len(cache._entries)


def test_a_cached_token_is_refused_on_the_request_after_its_revocation(
    client: TestClient,
) -> None:
    token_id, headers = _viewer(client)
    assert client.get("/api/v1/flows", headers=headers).status_code == 200
    assert client.get("/api/v1/flows", headers=headers).status_code == 200  # from the cache
    assert _cached(client) >= 2  # the admin's token and the viewer's
    assert client.delete(f"/api/v1/tokens/{token_id}").status_code == 204
    refused = client.get("/api/v1/flows", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthorized"
    # The admin token was dropped from the cache too, and still works.
    assert client.get("/api/v1/flows").status_code == 200


def test_a_revocation_by_another_process_is_seen_on_the_next_request(
    client: TestClient, engine: Engine
) -> None:
    token_id, headers = _viewer(client, "elsewhere")
    assert client.get("/api/v1/flows", headers=headers).status_code == 200
    assert client.get("/api/v1/flows", headers=headers).status_code == 200
    url = engine.url.render_as_string(hide_password=False)
    script = (
        "import sys\n"
        "from controlplane.services.access import revoke_token\n"
        "from controlplane.store.db import create_engine\n"
        "revoke_token(create_engine(sys.argv[1]), sys.argv[2], actor='other-process')\n"
    )
    subprocess.run([sys.executable, "-c", script, url, token_id], check=True, timeout=120)
    assert client.get("/api/v1/flows", headers=headers).status_code == 401


def test_a_cached_token_is_refused_once_it_expires(client: TestClient, engine: Engine) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1)
    _row, secret = create_token(
        engine, name="brief", role="viewer", expires_at=expires, actor="test"
    )
    assert client.get("/api/v1/flows", headers=bearer(secret)).status_code == 200
    assert client.get("/api/v1/flows", headers=bearer(secret)).status_code == 200
    while datetime.now(UTC) <= expires:
        time.sleep(0.05)
    refused = client.get("/api/v1/flows", headers=bearer(secret))
    assert refused.status_code == 401
    assert "expired" in refused.json()["message"]


def test_a_flow_read_with_a_known_token_is_one_query(client: TestClient, engine: Engine) -> None:
    assert client.put(FLOW_URL, json={"content": FLOW}).status_code == 201
    assert client.get(FLOW_URL).status_code == 200  # the token is now cached
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        # The embedded worker's claim polls run on their own threads meanwhile: not the request's.
        if threading.current_thread().name.startswith(socket.gethostname()):
            return
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    reader = client.app.state.read_engine  # type: ignore[attr-defined]
    for watched in {engine, reader}:
        event.listen(watched, "before_cursor_execute", record)
    try:
        served = client.get(FLOW_URL)
    finally:
        for watched in {engine, reader}:
            event.remove(watched, "before_cursor_execute", record)
    assert served.status_code == 200
    assert served.json()["content"] == FLOW
    # SQLite: the flow's query alone. Other databases add the cheap revoked-token count.
    expected = 1 if engine.dialect.name == "sqlite" else 2
    assert len(statements) == expected, statements


def test_if_none_match_answers_304_until_the_flow_changes(client: TestClient) -> None:
    assert client.put(FLOW_URL, json={"content": FLOW}).status_code == 201
    first = client.get(FLOW_URL)
    etag = first.headers["ETag"]
    assert first.json()["sha256"] in first.text
    unchanged = client.get(FLOW_URL, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.headers["ETag"] == etag
    assert unchanged.content == b""
    listed = client.get(FLOW_URL, headers={"If-None-Match": f'"other", W/{etag}'})
    assert listed.status_code == 304
    assert client.get(FLOW_URL, headers={"If-None-Match": "*"}).status_code == 304
    assert client.get(FLOW_URL, headers={"If-None-Match": '"stale"'}).status_code == 200

    changed = FLOW.replace("tasks:", "description: changed\ntasks:")
    assert client.put(FLOW_URL, json={"content": changed}).status_code == 200
    fresh = client.get(FLOW_URL, headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert fresh.headers["ETag"] != etag
    assert fresh.json()["content"] == changed
    # A viewer scoped elsewhere gets its 403, never a 304 that would confirm the ETag.
    scoped = client.post(
        "/api/v1/tokens", json={"name": "other", "role": "viewer", "namespaces": ["team.b"]}
    ).json()["token"]
    hidden = client.get(FLOW_URL, headers={**bearer(scoped), "If-None-Match": etag})
    assert hidden.status_code == 403


def test_logs_page_through_a_large_log_with_next_links(client: TestClient, engine: Engine) -> None:
    assert client.put(FLOW_URL, json={"content": FLOW}).status_code == 201
    run = execution_service.create_execution(engine, "team.read", "hello", inputs={})
    with Session(engine) as session:
        session.add_all(
            LogRow(execution_id=run.id, level="INFO", message=f"line {n}") for n in range(2500)
        )
        session.commit()
    url: str | None = f"/api/v1/executions/{run.id}/logs?limit=1000"
    messages: list[str] = []
    pages = 0
    while url is not None:
        page = client.get(url)
        assert page.status_code == 200, page.text
        lines = page.json()
        assert len(lines) <= 1000
        messages += [line["message"] for line in lines if line["task_id"] is None]
        pages += 1
        link = page.headers.get("Link")
        if link is None:
            assert "X-Next-After" not in page.headers
            url = None
        else:
            assert link.endswith('; rel="next"')
            assert page.headers["X-Next-After"] == str(lines[-1]["position"])
            url = link[1 : link.index(">")]
    assert pages == 3
    assert [m for m in messages if m.startswith("line ")] == [f"line {n}" for n in range(2500)]
    bounded = client.get(f"/api/v1/executions/{run.id}/logs", params={"limit": 10_001})
    assert bounded.status_code == 422


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_expired_cache_entry_is_read_again_by_one_caller(engine: Engine) -> None:
    """Past its ttl one caller reads the token again; the others keep the entry meanwhile."""
    _row, secret = create_token(engine, name="busy", role="viewer", actor="test")
    clock = _Clock()
    cache = TokenCache(engine, ttl=5, clock=clock)
    assert cache.authenticate(secret).name == "busy"
    clock.now = 6
    assert cache.cached(secret) is None  # this caller reads the row again...
    stale = cache.cached(secret)  # ...and a request arriving meanwhile does not
    assert stale is not None
    assert stale.name == "busy"
    assert cache.authenticate(secret, looked_up=True).name == "busy"
    assert cache.cached(secret) is not None  # fresh again: nobody reads it
    clock.now = 12
    assert cache.cached(secret) is None  # the refresher's turn again
    clock.now = 17
    # Past twice the ttl, an entry whose refresh never finished is not answered.
    assert cache.cached(secret) is None


def test_a_token_revoked_while_its_entry_is_refreshed_is_refused(engine: Engine) -> None:
    row, secret = create_token(engine, name="leaving", role="viewer", actor="test")
    clock = _Clock()
    cache = TokenCache(engine, ttl=5, clock=clock)
    cache.authenticate(secret)
    clock.now = 6
    assert cache.cached(secret) is None  # a refresh is under way
    revoke_token(engine, row.id, actor="test")
    # The revocation empties the cache: nobody is answered from the old entry.
    assert cache.cached(secret) is None
    with pytest.raises(UnauthorizedError):
        cache.authenticate(secret, looked_up=True)
    assert cache.cached(secret) is None
