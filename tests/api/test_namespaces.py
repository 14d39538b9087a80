from __future__ import annotations

from fastapi.testclient import TestClient

URL = "/api/v1/namespaces/platform.ops"
FLOW = "id: f\nnamespace: platform.ops\ntasks:\n  - {id: a, type: Log, message: hi}\n"


def test_put_is_idempotent_and_versioned(client: TestClient) -> None:
    body = {"description": "Ops team", "labels": {"team": "ops"}, "variables": {"region": "eu"}}
    created = client.put(URL, json=body)
    assert created.status_code == 201
    again = client.put(URL, json=body)
    assert again.status_code == 200
    assert again.json()["version"] == 1
    assert again.headers["ETag"] == created.headers["ETag"]
    changed = client.put(URL, json={**body, "description": "Ops"})
    assert changed.json()["version"] == 2
    got = client.get(URL)
    assert got.json()["description"] == "Ops"
    assert got.headers["ETag"] == changed.headers["ETag"]


def test_missing_is_404_and_stale_is_412(client: TestClient) -> None:
    assert client.get(URL).status_code == 404
    etag = client.put(URL, json={}).headers["ETag"]
    client.put(URL, json={"description": "x"})
    assert client.put(URL, json={}, headers={"If-Match": etag}).status_code == 412


def test_delete_refuses_a_namespace_with_flows(client: TestClient) -> None:
    client.put(URL, json={})
    client.put("/api/v1/flows/platform.ops/f", json={"content": FLOW})
    refused = client.delete(URL)
    assert refused.status_code == 409
    assert "holds 1 flow" in refused.json()["message"]
    client.delete("/api/v1/flows/platform.ops/f")
    assert client.delete(URL).status_code == 204
    assert client.get(URL).status_code == 404


def test_flow_creates_its_namespace_and_list_filters(client: TestClient) -> None:
    client.put("/api/v1/flows/platform.ops/f", json={"content": FLOW})
    client.put("/api/v1/namespaces/team.a", json={})
    names = [n["name"] for n in client.get("/api/v1/namespaces").json()["items"]]
    assert names == ["platform.ops", "team.a"]
    only = client.get("/api/v1/namespaces", params={"prefix": "team"}).json()
    assert [n["name"] for n in only["items"]] == ["team.a"]


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}
