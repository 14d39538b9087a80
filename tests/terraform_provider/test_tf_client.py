"""The provider's API client: server identity, retries, stop, and its debug log."""

from __future__ import annotations

import json

import httpx
import pytest

from controlplane.terraform_provider.client import FlowplaneClient
from controlplane.terraform_provider.errors import ApiError

IDENTITY = {"product": "flowplane", "server_id": "fps_1", "version": "1", "caller": {}}


def client_of(handler, *, identified: bool = True) -> FlowplaneClient:
    client = FlowplaneClient("http://flowplane.test", "fpt_secret-token", 5)
    client._http = httpx.Client(
        base_url=client.endpoint,
        headers=dict(client._http.headers),
        transport=httpx.MockTransport(handler),
    )
    if identified:
        client.identity = IDENTITY
    return client


def test_whoami_tells_flowplane_from_anything_else():
    ok = client_of(lambda _r: httpx.Response(200, json=IDENTITY), identified=False)
    assert ok.server_id is None
    ok.whoami()
    assert ok.server_id == "fps_1"

    for answer in (
        httpx.Response(404, json={"detail": "Not Found"}),
        httpx.Response(200, text="<html>welcome</html>"),
        httpx.Response(200, json={"product": "other"}),
    ):
        other = client_of(lambda _r, a=answer: a, identified=False)
        with pytest.raises(ApiError) as caught:
            other.whoami()
        assert caught.value.summary == "http://flowplane.test is not a Flowplane server"
        assert "base URL" in caught.value.detail
        assert other.server_id is None

    refused = client_of(lambda _r: httpx.Response(401, json={"message": "bad"}), identified=False)
    with pytest.raises(ApiError) as caught:
        refused.whoami()
    assert caught.value.summary == "Flowplane refused the API token (HTTP 401)"


def test_a_404_is_deletion_only_from_an_identified_server():
    def gone(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"code": "not_found", "message": "gone"})

    assert client_of(gone).get_flow("a", "b") is None
    with pytest.raises(ApiError) as caught:
        client_of(gone, identified=False).get_flow("a", "b")
    assert "not identified as Flowplane" in caught.value.summary


def flaky(statuses: list[int], seen: list[tuple[str, str]]):
    answers = iter(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.headers.get("If-Match", "")))
        status = next(answers, 200)
        return httpx.Response(status, json={"name": "ops", "id": "t"})

    return handler


def test_idempotent_requests_are_retried_on_502_503_504():
    seen: list[tuple[str, str]] = []
    assert client_of(flaky([503, 502, 504], seen)).get_namespace("ops") == {
        "name": "ops",
        "id": "t",
    }
    assert len(seen) == 4

    seen.clear()
    with pytest.raises(ApiError) as caught:
        client_of(flaky([503] * 10, seen)).put_namespace("ops", {})
    assert caught.value.status == 503
    assert len(seen) == 4  # the attempts are bounded


def test_a_post_is_not_retried_unless_it_carries_if_match():
    seen: list[tuple[str, str]] = []
    with pytest.raises(ApiError):
        client_of(flaky([503], seen)).create_token({"name": "x", "role": "viewer"})
    assert seen == [("POST", "")]

    seen.clear()
    client = client_of(flaky([503], seen))
    client._send("POST", "/api/v1/x", headers={"If-Match": '"v1"'})
    assert seen == [("POST", '"v1"'), ("POST", '"v1"')]


def test_connection_errors_are_retried():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"name": "ops"})

    assert client_of(handler).get_namespace("ops") == {"name": "ops"}
    assert len(calls) == 3


def test_after_stop_nothing_new_is_sent():
    seen: list[tuple[str, str]] = []
    client = client_of(flaky([], seen))
    client.stop()
    with pytest.raises(ApiError) as caught:
        client.put_namespace("ops", {})
    assert "asked the provider to stop" in caught.value.summary
    assert seen == []


def test_debug_log_names_each_request_and_status_without_secrets(monkeypatch, capsys):
    monkeypatch.setenv("TF_LOG", "DEBUG")
    seen: list[tuple[str, str]] = []
    client_of(flaky([503], seen)).put_secret("ops", "DB", "hunter2-value", None)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(x["method"], x["path"], x["status"], x["attempt"]) for x in lines] == [
        ("PUT", "/api/v1/namespaces/ops/secrets/DB", 503, 1),
        ("PUT", "/api/v1/namespaces/ops/secrets/DB", 200, 2),
    ]
    assert all(x["@level"] == "debug" for x in lines)
    text = json.dumps(lines)
    assert "hunter2-value" not in text
    assert "fpt_secret-token" not in text

    monkeypatch.delenv("TF_LOG")
    client_of(flaky([], seen)).get_namespace("ops")
    assert capsys.readouterr().err == ""
