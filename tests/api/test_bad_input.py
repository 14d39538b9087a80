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
