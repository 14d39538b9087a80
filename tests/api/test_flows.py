"""Flows over HTTP: the contract Terraform and the CLI rely on."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import token_headers

FLOW = """\
id: hello
namespace: platform.ops
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: hello   # a comment that must survive byte for byte
"""
URL = "/api/v1/flows/platform.ops/hello"


def put(client: TestClient, content: str, url: str = URL, **headers: str):  # type: ignore[no-untyped-def]
    return client.put(url, json={"content": content}, headers=headers)


def test_corpus_flow_round_trip_and_revision_history(client: TestClient, corpus: Path) -> None:
    source = (corpus / "full.yaml").read_text()
    url = "/api/v1/flows/io.kestra.tests/full"
    created = put(client, source, url)
    assert created.status_code == 201, created.text
    assert created.json()["revision"] == 1
    assert created.json()["origin"] == "api"

    got = client.get(url)
    assert got.status_code == 200
    assert got.json()["content"] == source  # byte for byte, comments included
    assert got.headers["ETag"] == created.headers["ETag"]

    updated = put(client, source.replace('message: "last"', 'message: "the end"'), url)
    assert updated.status_code == 200
    assert updated.json()["revision"] == 2

    history = client.get(url + "/revisions").json()["items"]
    assert [r["revision"] for r in history] == [1, 2]
    assert client.get(url + "/revisions/1").json()["content"] == source


def test_identical_put_is_a_noop(client: TestClient) -> None:
    first = put(client, FLOW)
    again = put(client, FLOW)
    assert again.status_code == 200
    assert again.json()["revision"] == first.json()["revision"] == 1
    assert again.headers["ETag"] == first.headers["ETag"]
    assert len(client.get(URL + "/revisions").json()["items"]) == 1


def test_comment_only_change_is_a_new_revision_with_the_same_spec(client: TestClient) -> None:
    first = put(client, FLOW).json()
    second = put(client, FLOW.replace("# a comment", "# another comment")).json()
    assert second["revision"] == 2
    assert second["spec_sha256"] == first["spec_sha256"]
    assert second["sha256"] != first["sha256"]


def test_yaml_body_is_accepted(client: TestClient) -> None:
    response = client.put(URL, content=FLOW, headers={"Content-Type": "application/x-yaml"})
    assert response.status_code == 201
    assert client.get(URL).json()["content"] == FLOW


def test_invalid_flow_is_422_with_lines(client: TestClient) -> None:
    bad = FLOW.replace("message: hello", "mesage: hello")
    response = put(client, bad)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_flow"
    messages = {(p["line"], p["path"], p["message"]) for p in body["problems"]}
    assert (6, "tasks[0].mesage", "unknown property 'mesage'; did you mean 'message'?") in messages
    assert client.get(URL).status_code == 404


def test_id_and_namespace_must_match_url(client: TestClient) -> None:
    response = put(client, FLOW, "/api/v1/flows/platform.other/hello2")
    assert response.status_code == 422
    paths = {p["path"]: p["line"] for p in response.json()["problems"]}
    assert paths == {"namespace": 2, "id": 1}


def test_if_match_prevents_lost_updates(client: TestClient) -> None:
    etag = put(client, FLOW).headers["ETag"]
    changed = FLOW.replace("hello   #", "hi   #")
    assert put(client, changed, **{"If-Match": etag}).status_code == 200
    stale = put(client, FLOW, **{"If-Match": etag})
    assert stale.status_code == 412
    assert stale.json()["code"] == "precondition_failed"
    assert client.delete(URL, headers={"If-Match": etag}).status_code == 412
    assert client.get(URL).json()["revision"] == 2


def test_delete_writes_a_tombstone_and_404s(client: TestClient) -> None:
    put(client, FLOW)
    assert client.delete(URL).status_code == 204
    assert client.get(URL).status_code == 404
    assert client.delete(URL).status_code == 404
    history = client.get(URL + "/revisions").json()["items"]
    assert [(r["revision"], r["deleted"]) for r in history] == [(1, False), (2, True)]
    recreated = put(client, FLOW)
    assert recreated.status_code == 201
    assert recreated.json()["revision"] == 3


def test_list_filters_and_pages(client: TestClient) -> None:
    for name in ("a", "b", "c"):
        source = FLOW.replace("id: hello", f"id: {name}")
        put(client, source, f"/api/v1/flows/platform.ops/{name}")
    put(client, FLOW.replace("platform.ops", "team.x"), "/api/v1/flows/team.x/hello")
    page = client.get("/api/v1/flows", params={"namespace_prefix": "platform", "limit": 2}).json()
    assert page["total"] == 3
    assert [f["id"] for f in page["items"]] == ["a", "b"]
    rest = client.get("/api/v1/flows", params={"namespace_prefix": "platform", "offset": 2}).json()
    assert [f["id"] for f in rest["items"]] == ["c"]
    assert client.get("/api/v1/flows", params={"q": "hel"}).json()["total"] == 1
    assert client.get("/api/v1/flows", params={"limit": 0}).status_code == 422


def test_validate_does_not_store(client: TestClient) -> None:
    ok = client.post("/api/v1/flows/validate", json={"content": FLOW}).json()
    assert ok["valid"] is True
    assert ok["id"] == "hello"
    bad = client.post("/api/v1/flows/validate", json={"content": "id: x\n"}).json()
    assert bad["valid"] is False
    assert bad["problems"][0]["path"] in {"namespace", "tasks"}
    assert client.get("/api/v1/flows").json()["total"] == 0


def test_origin_header_is_recorded_and_git_origins_are_refused(client: TestClient) -> None:
    response = put(
        client, FLOW, **{"X-Flowplane-Origin": "terraform", **token_headers(client, "ci", "editor")}
    )
    assert response.json()["origin"] == "terraform"
    assert client.get(URL + "/revisions").json()["items"][0]["created_by"] == "ci"
    refused = put(client, FLOW, **{"X-Flowplane-Origin": "git:flows"})
    assert refused.status_code == 400
