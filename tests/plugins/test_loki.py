"""Loki Query and QueryRange against a local server speaking Loki's HTTP query API.

The server answers GET /loki/api/v1/query_range and /loki/api/v1/query in the
formats Loki's HTTP API reference documents: ``{"status": "success", "data":
{"resultType": "streams" | "matrix" | "vector", "result": [...]}}``, stream
values as ``[nanosecond timestamp string, line]``, a parse error as 400 with a
plain-text body. It honours ``limit`` and ``direction`` over its entries and
checks the tenant header and the credentials.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.plugins.fake_servers import FakeServer, Reply, Request, serve
from tests.services.test_engine import logs, put_flow, run, task_runs

RUNS = {
    "io.kestra.plugin.grafana.loki.QueryRange": "test_query_range_reads_streams_and_matrices",
    "io.kestra.plugin.grafana.loki.Query": "test_instant_query_with_basic_auth_reads_a_vector",
}

NS = "platform.monitoring"
TOKEN = "glc_loki-T0ken-8899"  # noqa: S105 - a fixture value
BASIC = base64.b64encode(b"tenant1:b4sic-Pa55").decode()
# Lines of {job="api"}, oldest first: nanosecond timestamps as Loki returns them.
LINES = [(f"17000000{i:02d}000000000", f"line {i}: {'error' if i % 2 else 'ok'}") for i in range(6)]


def _loki(request: Request) -> Reply:
    auth = request.headers.get("authorization")
    if auth not in {f"Bearer {TOKEN}", f"Basic {BASIC}"}:
        return Reply(401, "no org id\n", {"Content-Type": "text/plain"})
    if request.headers.get("x-scope-orgid") != "team-a" and auth.startswith("Bearer"):
        return Reply(401, "no org id\n", {"Content-Type": "text/plain"})
    query = request.query["query"][0]
    limit = int(request.query.get("limit", ["100"])[0])
    if query.count("{") != query.count("}"):
        message = "parse error at line 1, col 6: syntax error: unexpected $end\n"
        return Reply(400, message, {"Content-Type": "text/plain"})
    if request.path == "/loki/api/v1/query":
        data = {
            "resultType": "vector",
            "result": [{"metric": {"job": "api"}, "value": [1700000005.0, "3"]}],
        }
    elif request.path != "/loki/api/v1/query_range":
        return Reply(404, "404 page not found\n", {"Content-Type": "text/plain"})
    elif query.startswith("rate("):
        data = {
            "resultType": "matrix",
            "result": [
                {"metric": {"job": "api"}, "values": [[1700000000, "0.5"], [1700000060, "0.25"]]},
            ],
        }
    else:
        wanted = [entry for entry in LINES if "error" not in query or "error" in entry[1]]
        if request.query["direction"][0] == "backward":
            wanted.reverse()
        data = {
            "resultType": "streams",
            "result": [
                {"stream": {"job": "api"}, "values": [list(e) for e in wanted[:limit]]},
            ],
        }
    return Reply(200, {"status": "success", "data": {**data, "stats": {}}})


@pytest.fixture
def loki(client: TestClient) -> Iterator[FakeServer]:
    with serve(_loki) as server:
        for key, value in {"LOKI_TOKEN": TOKEN, "LOKI_URL": server.url}.items():
            response = client.put(f"/api/v1/namespaces/{NS}/secrets/{key}", json={"value": value})
            assert response.status_code in {200, 201}
        yield server


def test_query_range_reads_streams_and_matrices(client: TestClient, loki: FakeServer) -> None:
    source = f"""\
id: errors
namespace: {NS}
tasks:
  - id: recent
    type: io.kestra.plugin.grafana.loki.QueryRange
    url: "{loki.url}/"
    authToken: "{{{{ secret('LOKI_TOKEN') }}}}"
    tenantId: team-a
    query: '{{job="api"}} |= "error"'
    start: "2023-11-14T22:13:20Z"
    end: "1700000099000000000"
    limit: 2
  - id: rate
    type: io.kestra.plugin.grafana.loki.QueryRange
    url: "{loki.url}"
    authToken: "{{{{ secret('LOKI_TOKEN') }}}}"
    tenantId: team-a
    query: 'rate({{job="api"}}[1m])'
    since: 1h
    step: 1m
    direction: FORWARD
"""
    put_flow(client, source)
    execution = run(client, NS, "errors")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    recent, rate = loki.requests
    assert recent.path == "/loki/api/v1/query_range"
    assert recent.query == {
        "query": ['{job="api"} |= "error"'],
        "limit": ["2"],
        "direction": ["backward"],
        "start": ["2023-11-14T22:13:20Z"],
        "end": ["1700000099000000000"],
    }
    assert rate.query["step"] == ["1m"]
    assert rate.query["since"] == ["1h"]
    assert rate.query["direction"] == ["forward"]
    outputs = task_runs(execution)
    assert outputs["recent"]["outputs"] == {
        "resultType": "streams",
        "logs": [  # the two newest error lines, newest first
            {"timestamp": "1700000005000000000", "line": "line 5: error", "labels": {"job": "api"}},
            {"timestamp": "1700000003000000000", "line": "line 3: error", "labels": {"job": "api"}},
        ],
    }
    assert outputs["rate"]["outputs"]["resultType"] == "matrix"
    assert outputs["rate"]["outputs"]["logs"][1] == {
        "timestamp": 1700000060,
        "value": "0.25",
        "labels": {"job": "api"},
    }
    lines = logs(client, execution["id"])
    assert "Loki returned 2 entries (streams)" in lines
    assert not [line for line in lines if TOKEN in line]
    assert TOKEN not in str(execution["task_runs"])


def test_instant_query_with_basic_auth_reads_a_vector(client: TestClient, loki: FakeServer) -> None:
    host = loki.url.removeprefix("http://")
    source = f"""\
id: count
namespace: {NS}
tasks:
  - id: now
    type: io.kestra.plugin.grafana.loki.Query
    url: "http://tenant1:b4sic-Pa55@{host}"
    query: 'sum(count_over_time({{job="api"}}[5m]))'
    time: "1700000005"
  - id: broken
    type: io.kestra.plugin.grafana.loki.Query
    url: "{{{{ secret('LOKI_URL') }}}}"
    authToken: "{{{{ secret('LOKI_TOKEN') }}}}"
    tenantId: team-a
    query: 'sum(count_over_time({{job="api"[5m]))'
"""
    put_flow(client, source)
    execution = run(client, NS, "count")
    assert execution["state"] == "FAILED"
    first, second = loki.requests
    assert first.path == "/loki/api/v1/query"
    assert first.headers["authorization"] == f"Basic {BASIC}"
    assert first.query["time"] == ["1700000005"]
    assert task_runs(execution)["now"]["outputs"] == {
        "resultType": "vector",
        "logs": [{"timestamp": 1700000005.0, "value": "3", "labels": {"job": "api"}}],
    }
    assert second.headers["x-scope-orgid"] == "team-a"
    assert any(
        "Loki answered 400 to /loki/api/v1/query: parse error at line 1" in line
        for line in logs(client, execution["id"])
    )


def test_query_sends_limit_and_direction_and_query_range_an_interval(
    client: TestClient, loki: FakeServer
) -> None:
    source = f"""\
id: options
namespace: {NS}
tasks:
  - id: now
    type: io.kestra.plugin.grafana.loki.Query
    url: "{{{{ secret('LOKI_URL') }}}}"
    authToken: "{{{{ secret('LOKI_TOKEN') }}}}"
    tenantId: team-a
    query: 'count_over_time({{job="api"}}[5m])'
    limit: 7
    direction: FORWARD
  - id: sampled
    type: io.kestra.plugin.grafana.loki.QueryRange
    url: "{{{{ secret('LOKI_URL') }}}}"
    authToken: "{{{{ secret('LOKI_TOKEN') }}}}"
    tenantId: team-a
    query: '{{job="api"}}'
    interval: 30s
"""
    put_flow(client, source)
    execution = run(client, NS, "options")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    instant, ranged = loki.requests
    assert instant.path == "/loki/api/v1/query"
    assert (instant.query["limit"], instant.query["direction"]) == (["7"], ["forward"])
    assert ranged.path == "/loki/api/v1/query_range"
    assert ranged.query["interval"] == ["30s"]
    assert "time" not in instant.query  # Loki's default instant: now


def _run_within(client: TestClient, flow_id: str, seconds: float) -> dict[str, Any]:
    """Run a flow, answering after at most ``seconds`` (the run may still be going)."""
    response = client.post(
        f"/api/v1/executions/{NS}/{flow_id}",
        params={"wait": True, "timeout": seconds},
        json={"inputs": {}},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("kind", ["Query", "QueryRange"])
def test_connect_and_read_timeouts_end_a_stalled_request(client: TestClient, kind: str) -> None:
    # A server that reads the request and never answers, and a listener whose
    # accept queue is full (the kernel drops the SYN, so connect hangs). The
    # defaults (read 60 s, connect 30 s) would keep the run going well past the
    # 15 s this test waits; the 1 s timeouts end it FAILED.
    release = threading.Event()
    with serve(lambda _request: Reply(200, {}) if release.wait(60) else Reply(500)) as stalled:
        full = socket.socket()
        clients: list[socket.socket] = []
        try:
            full.bind(("127.0.0.1", 0))
            full.listen(0)
            for _ in range(3):
                waiting = socket.socket()
                waiting.setblocking(False)  # noqa: FBT003 - the socket API
                with contextlib.suppress(BlockingIOError):
                    waiting.connect(full.getsockname())
                clients.append(waiting)
            port = full.getsockname()[1]
            for timeout, url in (("readTimeout", stalled.url), ("connectTimeout", port)):
                address = url if isinstance(url, str) else f"http://127.0.0.1:{url}"
                put_flow(
                    client,
                    f"""\
id: slow
namespace: {NS}
tasks:
  - id: ask
    type: io.kestra.plugin.grafana.loki.{kind}
    url: "{address}"
    query: '{{job="api"}}'
    {timeout}: 1
""",
                )
                execution = _run_within(client, "slow", 15)
                assert execution["state"] == "FAILED", (timeout, execution["state"])
                lines = logs(client, execution["id"])
                assert any("failed: timed out" in line for line in lines), lines
        finally:
            release.set()
            for waiting in clients:
                waiting.close()
            full.close()
