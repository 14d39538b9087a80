"""The provider's pure parts and its HTTP client, without Terraform."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from tf_harness import REPO, free_port

from controlplane.terraform_provider.api_token import API_TOKEN_FIELDS, token_state
from controlplane.terraform_provider.client import FlowplaneClient
from controlplane.terraform_provider.errors import ApiError, Problem
from controlplane.terraform_provider.framework import UNKNOWN, new_diagnostics
from controlplane.terraform_provider.git_source import (
    GIT_SOURCE_FIELDS,
    source_body,
    source_state,
)
from controlplane.terraform_provider.kv import kv_state
from controlplane.terraform_provider.namespace_file import file_state
from controlplane.terraform_provider.planning import replaced_attributes
from controlplane.terraform_provider.provider import FlowplaneProvider
from controlplane.terraform_provider.reporting import reporting
from controlplane.terraform_provider.schemas import (
    EXECUTION_DATA_FIELDS,
    FLOW_FIELDS,
    execution_state,
    flow_state,
    namespace_body,
    namespace_state,
    with_etag,
)

NAMESPACE_BODY = {
    "name": "ops",
    "description": None,
    "labels": {},
    "variables": {},
    "allowed_namespaces": [],
}


def test_namespace_state_keeps_terraforms_unset_values():
    assert namespace_state(NAMESPACE_BODY, {"labels": None, "variables": None}) == {
        "id": "ops",
        "name": "ops",
        "description": None,
        "labels": None,
        "variables": None,
        "allowed_namespaces": None,
    }
    # Empty in the configuration stays empty, not null.
    kept = namespace_state(NAMESPACE_BODY, {"labels": {}, "variables": {}, "description": ""})
    assert (kept["labels"], kept["variables"], kept["description"]) == ({}, {}, "")
    # Real values always win, so drift on the server is seen.
    drifted = namespace_state({**NAMESPACE_BODY, "labels": {"a": "b"}}, {"labels": None})
    assert drifted["labels"] == {"a": "b"}
    # The server loses labels Terraform had: that is drift too.
    emptied = namespace_state(NAMESPACE_BODY, {"labels": {"a": "b"}})
    assert emptied["labels"] == {}


def test_namespace_variables_are_strings_in_terraform():
    body = {**NAMESPACE_BODY, "variables": {"s": "x", "n": 3, "o": {"b": 1, "a": [True]}}}
    assert namespace_state(body, None)["variables"] == {
        "s": "x",
        "n": "3",
        "o": '{"a": [true], "b": 1}',
    }


def test_namespace_body_sends_every_attribute():
    assert namespace_body({"name": "x", "description": None, "labels": None}) == {
        "description": None,
        "labels": {},
        "variables": {},
        "allowed_namespaces": [],
    }


def test_flow_state_takes_content_override():
    body = {
        "namespace": "ops",
        "id": "backup",
        "content": "server copy",
        "revision": 4,
        "sha256": "a",
        "spec_sha256": "b",
        "origin": "api",
    }
    assert flow_state(body, None)["content"] == "server copy"
    state = flow_state(body, "terraform copy")
    assert state["content"] == "terraform copy"
    assert state["id"] == "ops/backup"
    assert set(with_etag(state, {"etag": '"4-ab"'})) == {f.name for f in FLOW_FIELDS}


def test_replaced_attributes_follow_the_plan():
    prior = {"namespace": "a", "flow_id": "x", "content": "1"}
    assert replaced_attributes(FLOW_FIELDS, prior, {**prior, "content": "2"}) == []
    moved = {**prior, "namespace": "b", "content": "2"}
    assert replaced_attributes(FLOW_FIELDS, prior, moved) == ["namespace"]
    unknown = {**prior, "flow_id": UNKNOWN}
    assert replaced_attributes(FLOW_FIELDS, prior, unknown) == ["flow_id"]


def test_problem_renders_like_the_cli():
    assert Problem("bad", "tasks[0]", 4, 5).render() == "<flow>:4:5: tasks[0]: bad"
    assert Problem("empty").render() == "empty"
    assert Problem("too big", "poll_interval_seconds").render() == "poll_interval_seconds: too big"
    assert Problem("x", "id", 2, None, "a.yaml").render() == "a.yaml:2: id: x"


IDENTITY = {"product": "flowplane", "server_id": "fps_unit", "version": "0"}


def _client(handler) -> FlowplaneClient:
    """A client whose server was identified, as configure_provider leaves it."""
    client = FlowplaneClient("http://flowplane.test/", "tok", 5, httpx.MockTransport(handler))
    client.identity = IDENTITY
    return client


def _error(status: int, body: dict):
    return lambda _request: httpx.Response(status, json=body)


def test_client_sends_origin_token_and_content_verbatim():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    content = "id: a\nnamespace: b\n# ü \r\n"
    assert _client(handler).put_flow("b", "a", content) == {"ok": True}
    request = seen[0]
    assert request.url.path == "/api/v1/flows/b/a"
    assert request.headers["X-Flowplane-Origin"] == "terraform"
    assert request.headers["Authorization"] == "Bearer tok"
    assert json.loads(request.content) == {"content": content}


def test_client_maps_404_to_none_and_caches_validation():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.method == "GET":
            return httpx.Response(404, json={"code": "not_found", "message": "gone"})
        return httpx.Response(200, json={"valid": True})

    client = _client(handler)
    assert client.get_flow("a", "b") is None
    assert client.get_namespace("a") is None
    client.delete_flow("a", "b")  # 404 on delete: already gone, not an error
    assert client.validate_flow("x") == client.validate_flow("x")
    assert calls.count("/api/v1/flows/validate") == 1


@pytest.mark.parametrize(
    ("status", "body", "summary", "detail"),
    [
        (401, {"message": "bad token"}, "Flowplane refused the API token (HTTP 401)", "bad token"),
        (
            403,
            {"message": "no"},
            "Flowplane refused the API token (HTTP 403: not allowed)",
            "its role or namespaces do not allow this",
        ),
        (409, {"message": "owned by git"}, "Flowplane refused the change (HTTP 409", "owned"),
        (
            422,
            {"message": "invalid", "problems": [{"line": 3, "path": "id", "message": "m"}]},
            "Flowplane rejected the flow as invalid",
            "<flow>:3: id: m",
        ),
        (503, {"message": "db down"}, "PUT /api/v1/flows/a/b failed with HTTP 503", "db down"),
    ],
)
def test_client_translates_error_bodies(status, body, summary, detail):
    with pytest.raises(ApiError) as caught:
        _client(_error(status, body)).put_flow("a", "b", "x")
    assert caught.value.summary.startswith(summary)
    assert detail in caught.value.detail
    assert caught.value.status == status


def test_client_names_an_unreachable_server_and_a_non_json_error():
    endpoint = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ApiError) as caught:
        FlowplaneClient(endpoint, None, 2).get_flow("a", "b")
    assert caught.value.summary == f"cannot reach Flowplane at {endpoint}: connection refused"

    plain = _client(lambda _request: httpx.Response(502, text="<html>proxy</html>"))
    with pytest.raises(ApiError) as caught:
        plain.get_namespace("a")
    assert "HTTP 502" in caught.value.summary
    assert caught.value.detail == "Bad Gateway"


def test_client_reports_timeouts_with_the_limit():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ApiError) as caught:
        _client(handler).get_flow("a", "b")
    assert "did not answer within 5 s" in caught.value.summary


def test_reporting_turns_exceptions_into_diagnostics():
    diagnostics = new_diagnostics()
    with reporting(diagnostics, "create flow a/b", ["content"]):
        raise ApiError("cannot reach Flowplane at X: connection refused", "check it")
    with reporting(diagnostics, "read flow a/b"):
        raise KeyError("namespace")
    first, second = diagnostics.diagnostics
    assert first.summary == "create flow a/b: cannot reach Flowplane at X: connection refused"
    assert first.path == ["content"]
    assert second.summary == "read flow a/b: internal error in the Flowplane provider"
    assert "KeyError: 'namespace'" in second.detail


def test_provider_configuration(monkeypatch):
    provider = FlowplaneProvider()
    diagnostics = new_diagnostics()
    monkeypatch.delenv("FLOWPLANE_ENDPOINT", raising=False)
    provider.configure_provider(diagnostics, {"endpoint": None, "api_token": None, "timeout": None})
    assert diagnostics.has_errors()
    assert "FLOWPLANE_ENDPOINT" in diagnostics.diagnostics[0].detail
    assert provider.client is None

    monkeypatch.setenv("FLOWPLANE_ENDPOINT", "http://from-env:8080/")
    monkeypatch.setattr(FlowplaneClient, "whoami", lambda _self: IDENTITY)
    ok = new_diagnostics()
    provider.configure_provider(ok, {"endpoint": None, "api_token": None, "timeout": 3})
    assert not ok.has_errors()
    assert provider.require_client().endpoint == "http://from-env:8080"

    checks = new_diagnostics()
    provider.validate_config(checks, {"endpoint": "ftp://x", "timeout": 0})
    assert [d.path for d in checks.diagnostics] == [["endpoint"], ["timeout"]]


def test_client_sends_if_match_and_keeps_the_etag_header():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"name": "ops"}, headers={"ETag": '"v3"'})

    client = _client(handler)
    assert client.put_namespace("ops", {}, if_match='"v2"') == {"name": "ops", "etag": '"v3"'}
    assert seen[0].headers["If-Match"] == '"v2"'
    client.put_source("src", {"url": "x"})
    assert "If-Match" not in seen[1].headers
    assert seen[1].headers["X-Flowplane-Origin"] == "terraform"


def test_client_explains_a_stale_etag():
    body = {"message": 'If-Match "v1" does not match the current ETag "v2"'}
    with pytest.raises(ApiError) as caught:
        _client(_error(412, body)).put_source("src", {}, if_match='"v1"')
    assert caught.value.summary == (
        "the object changed on the server since Terraform last read it (HTTP 412); "
        "nothing was overwritten"
    )
    assert 'PUT /api/v1/sources/src: If-Match "v1"' in caught.value.detail
    assert "terraform apply -refresh-only" in caught.value.detail


def test_client_source_deletion_tolerates_a_source_already_gone():
    statuses = iter([404, 204])
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        return httpx.Response(next(statuses))

    client = _client(answer)
    client.delete_source("a")
    client.delete_source("a")
    assert seen == [("DELETE", "/api/v1/sources/a")] * 2


SOURCE_BODY = {
    "id": "flows",
    "url": "https://git.example.com/f.git",
    "branch": "main",
    "flows_path": "flows/",
    "secrets_path": "secrets/",
    "poll_interval_seconds": 60,
    "has_webhook_secret": True,
    "approval": "auto",
    "required_approvals": 1,
    "prune": False,
    "self_heal": False,
    "last_commit": None,
    "version": 2,
    "etag": '"v2"',
}


def test_source_state_and_body():
    state = source_state(SOURCE_BODY, "hook")
    assert set(state) == {f.name for f in GIT_SOURCE_FIELDS}
    assert (state["webhook_secret"], state["etag"], state["version"]) == ("hook", '"v2"', 2)
    # The server holds no secret: whatever Terraform had is gone.
    cleared = source_state({**SOURCE_BODY, "has_webhook_secret": False}, "hook")
    assert cleared["webhook_secret"] is None
    # Create: unset defaulted attributes are left to the server; the secret is always sent.
    planned = {"id": "flows", "url": "u", "branch": UNKNOWN, "prune": None, "webhook_secret": None}
    assert source_body(planned) == {"url": "u", "webhook_secret": None}


def test_token_state_keeps_the_configured_spelling_of_expiry():
    body = {
        "id": "tok_1",
        "name": "ci",
        "role": "viewer",
        "namespaces": ["*"],
        "expires_at": "2099-01-01T00:00:00Z",
        "created_at": "2026-11-23T12:00:00Z",
        "created_by": "admin",
    }
    state = token_state(body, "fpt_secret", {"expires_at": "2099-01-01T02:00:00+02:00"})
    assert set(state) == {f.name for f in API_TOKEN_FIELDS}
    assert state["expires_at"] == "2099-01-01T02:00:00+02:00"
    assert state["token"] == "fpt_secret"  # noqa: S105 - a test value
    # Another instant is a real difference: the server's value wins.
    moved = token_state(body, None, {"expires_at": "2098-01-01T00:00:00Z"})
    assert moved["expires_at"] == "2099-01-01T00:00:00Z"


def test_execution_state_has_every_attribute():
    body = {
        "id": "e1",
        "namespace": "ops",
        "flow_id": "backup",
        "flow_revision": 3,
        "state": "SUCCESS",
        "origin": "git:flows",
        "git_commit_sha": "abc",
        "plan_id": "p1",
        "labels": {"n": 1, "s": "x"},
        "created_at": "2026-11-23T12:00:00Z",
        "ended_at": None,
    }
    state = execution_state(body)
    assert set(state) == {f.name for f in EXECUTION_DATA_FIELDS}
    assert state["labels"] == {"n": "1", "s": "x"}


def test_docs_cover_every_attribute_in_the_schema():
    schema = json.loads((REPO / "provider-schema" / "schema.json").read_text())
    provider = schema["provider_schemas"]["registry.terraform.io/flowplane/flowplane"]
    docs = REPO / "provider-schema" / "docs"
    pages = {docs / "index.md": provider["provider"]}
    for kind, folder in (
        ("resource_schemas", "resources"),
        ("data_source_schemas", "data-sources"),
    ):
        for type_name, type_schema in provider[kind].items():
            pages[docs / folder / f"{type_name.removeprefix('flowplane_')}.md"] = type_schema
    assert len(pages) == 11
    for page, type_schema in pages.items():
        text = page.read_text()
        assert "## Example Usage" in text, page
        missing = [a for a in type_schema["block"]["attributes"] if f"- `{a}` (" not in text]
        assert missing == [], f"{page} does not document {missing}"
    for page in list(pages)[1:]:
        assert "## Import" in page.read_text(), page


def test_kv_state_compares_json_by_meaning_not_by_python_equality():
    body = {"namespace": "ops", "key": "k", "value": {"b": 1, "a": [True]}}
    prior = {"type": "JSON", "value": '{"a": [true],  "b": 1}'}
    assert kv_state(body, prior)["value"] == prior["value"]
    # 1 == True in Python, but not in JSON: a changed type is a change.
    moved = kv_state({**body, "value": {"b": 1, "a": [1]}}, prior)
    assert moved["value"] == '{"a":[1],"b":1}'
    # A string replaced by an object on the server switches to JSON; a string stays a string.
    assert kv_state(body, {"type": None, "value": "x"})["type"] == "JSON"
    assert kv_state({**body, "value": "y"}, {"type": None, "value": "x"})["value"] == "y"
    assert kv_state({**body, "value": "y"}, None)["type"] is None


def test_file_state_keeps_configured_content_while_bytes_match():
    def body(data: bytes) -> dict:
        encoded = base64.b64encode(data).decode()
        return {"namespace": "ops", "path": "a/b.txt", "content_base64": encoded}

    prior = {"content": "héllo\n", "content_base64": None}
    kept = file_state({**body("héllo\n".encode()), "sha256": "s", "size": 7}, prior)
    assert (kept["content"], kept["content_base64"]) == ("héllo\n", None)
    edited = file_state({**body(b"edited"), "sha256": "s", "size": 6}, prior)
    assert edited["content"] == "edited"
    binary = file_state({**body(b"\xff\x00"), "sha256": "s", "size": 2}, None)
    assert (binary["content"], binary["content_base64"]) == (None, "/wA=")
