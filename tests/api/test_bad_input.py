"""Bad input of every kind is a 4xx with a precise message, never a 500."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

URL = "/api/v1/flows/platform.ops/hello"


def test_body_too_large_is_413(client: TestClient) -> None:
    huge = "x" * 2_000_000
    response = client.put(URL, json={"content": huge})
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_non_utf8_is_400(client: TestClient) -> None:
    response = client.put(
        URL, content=b"id: \xff\xfe", headers={"Content-Type": "application/x-yaml"}
    )
    assert response.status_code == 400
    assert "UTF-8" in response.json()["message"]


def test_wrong_content_type_is_415(client: TestClient) -> None:
    response = client.put(URL, content=b"hello", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert "application/json" in response.json()["message"]


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.put(URL, content=b"{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]


def test_unknown_field_is_422(client: TestClient) -> None:
    response = client.put(URL, json={"content": "id: x", "contnet": 1})
    assert response.status_code == 422
    assert response.json()["problems"][0]["path"] == "contnet"


def test_alias_bomb_is_422(client: TestClient) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, 9):
        prev, name = chr(96 + level), chr(97 + level)
        bomb += f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]\n"
    response = client.put(URL, json={"content": bomb})
    assert response.status_code == 422
    assert "expands to more than" in response.json()["problems"][0]["message"]


@pytest.mark.parametrize(
    "content",
    ["id: x\x00", "\ud800", "id: [", "", "[]", "42", "id: x\nnamespace: platform.ops\ntasks: 3\n"],
)
def test_hostile_contents_are_4xx(client: TestClient, content: str) -> None:
    raw = json.dumps({"content": content}).encode()
    response = client.put(URL, content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text


def test_bad_namespace_body_is_422(client: TestClient) -> None:
    response = client.put("/api/v1/namespaces/platform", json={"labels": {"a": 1}})
    assert response.status_code == 422
    response = client.put("/api/v1/namespaces/Bad_NS", json={})
    assert response.status_code == 422
    response = client.put("/api/v1/namespaces/platform", json={"description": "a\x00b"})
    assert response.status_code == 422


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=300))
def test_arbitrary_text_never_500s(client: TestClient, content: str) -> None:
    raw = json.dumps({"content": content}).encode()
    response = client.put(URL, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text


FLOW = "id: hello\nnamespace: platform.ops\ntasks:\n  - {id: a, type: Log, message: hi}\n"
TOO_BIG = 2**63  # one past the largest BIGINT


def test_yaml11_words_in_a_flow_are_strings(client: TestClient) -> None:
    source = (
        "id: yes\nnamespace: platform.ops\nlabels:\n  country: NO\n"
        "tasks:\n  - {id: on, type: Log, message: off}\n"
    )
    response = client.put("/api/v1/flows/platform.ops/yes", json={"content": source})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("content", ["a: &a [*a]\n", "id: x\ntasks: &t\n  - {id: a, then: *t}\n"])
def test_recursive_alias_is_422_with_its_line(client: TestClient, content: str) -> None:
    response = client.put(URL, json={"content": content})
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert problem["message"].startswith("recursive alias")
    assert problem["file"] == "platform.ops/hello.yaml"
    assert problem["line"] == content.count("\n", 0, content.index("&")) + 1


def test_nul_in_a_raw_yaml_body_is_422(client: TestClient) -> None:
    response = client.put(
        URL, content=b"id: a\x00b\n", headers={"Content-Type": "application/x-yaml"}
    )
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["message"]


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/flows?offset={TOO_BIG}",
        f"/api/v1/executions?offset={TOO_BIG}",
        f"/api/v1/audit?offset={TOO_BIG}",
        f"/api/v1/namespaces?offset={TOO_BIG}",
        f"/api/v1/flows/platform.ops/hello/revisions/{TOO_BIG}",
    ],
)
def test_integers_past_bigint_are_422(client: TestClient, url: str) -> None:
    assert client.put(URL, json={"content": FLOW}).status_code == 201
    response = client.get(url)
    assert response.status_code == 422, response.text
    assert "less than or equal to" in response.json()["message"]


def test_log_positions_past_bigint_are_422(client: TestClient) -> None:
    assert client.put(URL, json={"content": FLOW}).status_code == 201
    run = client.post("/api/v1/executions/platform.ops/hello", json={}).json()
    logs = f"/api/v1/executions/{run['id']}/logs"
    assert client.get(logs, params={"after": TOO_BIG}).status_code == 422
    assert client.get(f"{logs}/follow", params={"after": TOO_BIG}).status_code == 422
    response = client.get(f"{logs}/follow", headers={"Last-Event-ID": str(TOO_BIG)})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/flows?q=a%00b",
        "/api/v1/flows?namespace_prefix=a%00",
        "/api/v1/executions?flow_id=a%00",
        "/api/v1/executions/a%00b",
        "/api/v1/executions/a%00b/logs",
        "/api/v1/audit?actor=a%00",
        "/api/v1/plans?source_id=a%00",
        "/api/v1/plans/a%00b",
        "/api/v1/tokens/a%00b",
        "/api/v1/namespaces?prefix=a%00",
    ],
)
def test_nul_in_path_or_query_is_422(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 422, response.text
    assert "must not contain a NUL character" in response.json()["message"]


def test_nul_in_json_bodies_is_422(client: TestClient) -> None:
    response = client.put(URL, json={"content": "id: a\u0000"})
    assert response.status_code == 422
    assert "NUL" in response.json()["message"]
    response = client.put("/api/v1/namespaces/platform/secrets/KEY", json={"value": "a\u0000"})
    assert response.status_code == 422
    assert "NUL" in response.json()["message"]
