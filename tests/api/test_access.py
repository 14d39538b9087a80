"""Tokens, roles and namespace scopes: nobody acts beyond their role or outside their scope."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, text

from controlplane.api.app import create_app
from controlplane.api.auth import PUBLIC_ROUTES
from controlplane.services.access import create_token
from controlplane.settings import Settings
from tests.conftest import ADMIN_TOKEN, bearer, token_headers
from tests.services.test_gitops import add_source, commit, git

FLOW_A = "id: hello\nnamespace: team-a.apps\ntasks:\n  - {id: p, type: Pause}\n"
FLOW_B = "id: hello\nnamespace: team-b.apps\ntasks:\n  - {id: log, type: Log, message: hi}\n"


def put_flow(client: TestClient, source: str, **headers: str) -> Any:
    namespace = source.split("namespace: ")[1].split("\n", maxsplit=1)[0]
    return client.put(
        f"/api/v1/flows/{namespace}/hello",
        content=source,
        headers={"Content-Type": "application/x-yaml", **headers},
    )


def _required_roles(route: APIRoute) -> set[str]:
    found: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        role = getattr(dependant.call, "required_role", None)
        if role:
            found.add(role)
        pending.extend(dependant.dependencies)
    return found


def _api_routes(routes: Iterable[object]) -> Iterator[APIRoute]:
    """Every APIRoute, including those FastAPI keeps inside included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)


def test_every_api_route_declares_its_role(client: TestClient) -> None:
    undeclared = []
    served = set()
    for route in _api_routes(client.app.routes):  # type: ignore[attr-defined]
        if not route.path.startswith("/api/v1"):
            continue
        for method in route.methods:
            # The contract writes a `{path:path}` converter as `{path}`.
            served.add((method, route.path.replace(":path}", "}")))
            public = (method, route.path) in PUBLIC_ROUTES
            roles = _required_roles(route)
            if public == bool(roles):
                undeclared.append(f"{method} {route.path}: public={public} roles={roles}")
    assert undeclared == []
    assert served >= PUBLIC_ROUTES, "a public route listed in auth.py no longer exists"
    # The walk saw every operation of the contract, so the check above covered them all.
    documented = {
        (method.upper(), path)
        for path, operations in client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        if path.startswith("/api/v1")
        for method in operations
    }
    assert documented <= served
    assert len(served) > 40


def test_no_token_is_401_and_a_wrong_one_too(client: TestClient) -> None:
    anonymous = client.get("/api/v1/flows", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    wrong = client.get("/api/v1/flows", headers=bearer("fpt_not-a-token"))
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "unauthorized"
    assert client.get("/healthz", headers={"Authorization": ""}).status_code == 200


def test_token_secret_is_shown_once_and_stored_only_as_a_hash(
    client: TestClient, engine: Engine
) -> None:
    created = client.post(
        "/api/v1/tokens", json={"name": "ci", "role": "editor", "namespaces": ["team-a.*"]}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["token"]
    assert secret.startswith("fpt_")
    assert created.headers["Cache-Control"] == "no-store"
    listed = client.get("/api/v1/tokens").json()
    assert {t["name"] for t in listed} == {"admin", "ci"}
    assert secret not in str(listed)
    assert "token" not in client.get(f"/api/v1/tokens/{body['id']}").json()
    with engine.connect() as connection:
        dump = str(connection.execute(text("SELECT * FROM api_tokens")).all())
        audit = str(connection.execute(text("SELECT * FROM audit_events")).all())
    assert secret not in dump
    assert secret not in audit
    assert "token.create" in audit

    assert client.get("/api/v1/flows", headers=bearer(secret)).status_code == 200
    duplicate = client.post("/api/v1/tokens", json={"name": "ci", "role": "viewer"})
    assert duplicate.status_code == 409
    assert client.delete(f"/api/v1/tokens/{body['id']}").status_code == 204
    assert client.get("/api/v1/flows", headers=bearer(secret)).status_code == 401
    assert client.get(f"/api/v1/tokens/{body['id']}").status_code == 404
    # A revoked token's name is free again (Terraform replaces tokens that way).
    assert client.post("/api/v1/tokens", json={"name": "ci", "role": "viewer"}).status_code == 201


def test_expired_token_is_refused(client: TestClient, engine: Engine) -> None:
    past = client.post(
        "/api/v1/tokens",
        json={"name": "old", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"},
    )
    assert past.status_code == 400
    assert "past" in past.json()["message"]
    naive = client.post(
        "/api/v1/tokens",
        json={"name": "naive", "role": "viewer", "expires_at": "2030-01-01T00:00:00"},
    )
    assert naive.status_code == 422
    _row, secret = create_token(
        engine,
        name="short",
        role="viewer",
        expires_at=datetime.now(UTC) + timedelta(milliseconds=300),
        actor="test",
    )
    assert client.get("/api/v1/flows", headers=bearer(secret)).status_code == 200
    # The token was made to expire 300 ms after creation; the auth cache checks
    # the expiry on every hit, so waiting past it is enough.
    time.sleep(0.4)
    refused = client.get("/api/v1/flows", headers=bearer(secret))
    assert refused.status_code == 401
    assert "expired" in refused.json()["message"]


def test_only_admins_manage_tokens(client: TestClient) -> None:
    editor = token_headers(client, "ed", "editor")
    response = client.post("/api/v1/tokens", json={"name": "x", "role": "admin"}, headers=editor)
    assert response.status_code == 403
    assert "needs admin" in response.json()["message"]
    assert client.get("/api/v1/tokens", headers=editor).status_code == 403


def test_viewer_reads_but_cannot_write_resume_or_approve(client: TestClient) -> None:
    assert put_flow(client, FLOW_A).status_code == 201
    viewer = token_headers(client, "vic", "viewer")
    assert client.get("/api/v1/flows/team-a.apps/hello", headers=viewer).status_code == 200
    refused = put_flow(client, FLOW_A.replace("Pause", "Log, message: x"), **viewer)
    assert refused.status_code == 403
    assert client.get("/api/v1/flows/team-a.apps/hello").json()["revision"] == 1

    run = client.post("/api/v1/executions/team-a.apps/hello?wait=true", json={}).json()
    assert run["state"] == "PAUSED"
    resume = client.post(f"/api/v1/executions/{run['id']}/resume", json={}, headers=viewer)
    assert resume.status_code == 403
    editor = token_headers(client, "eddie", "editor")
    resume = client.post(f"/api/v1/executions/{run['id']}/resume", json={}, headers=editor)
    assert resume.status_code == 403
    assert client.get(f"/api/v1/executions/{run['id']}").json()["state"] == "PAUSED"


def test_viewer_cannot_approve_a_real_pending_plan(client: TestClient, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, {"flows/team-a.apps/hello.yaml": FLOW_A}, "Add hello")
    add_source(client, repo, approval="approval")
    plan = client.post("/api/v1/sources/flows/sync").json()
    assert plan["status"] == "pending"
    url = f"/api/v1/plans/{plan['id']}/approve"
    viewer = token_headers(client, "vic", "viewer")
    refused = client.post(url, json={"comment": "lgtm"}, headers=viewer)
    assert refused.status_code == 403
    after = client.get(f"/api/v1/plans/{plan['id']}").json()
    assert after["status"] == "pending"
    assert after["approvals"] == []
    reviewer = token_headers(client, "rita", "reviewer")
    assert client.post(url, json={"comment": "lgtm"}, headers=reviewer).json()["status"] == (
        "applied"
    )


def test_scoped_token_cannot_read_or_touch_another_team(client: TestClient) -> None:
    assert put_flow(client, FLOW_A).status_code == 201
    assert put_flow(client, FLOW_B).status_code == 201
    client.put("/api/v1/namespaces/team-b.apps", json={"description": "B"})
    client.put("/api/v1/namespaces/team-b.apps/secrets/KEY", json={"value": "b-secret-value"})
    run_b = client.post("/api/v1/executions/team-b.apps/hello?wait=true", json={}).json()
    team_a = token_headers(client, "alice", "admin", namespaces=("team-a.*",))

    listed = client.get("/api/v1/flows", headers=team_a).json()
    assert [f["namespace"] for f in listed["items"]] == ["team-a.apps"]
    assert listed["total"] == 1
    namespaces = client.get("/api/v1/namespaces", headers=team_a).json()
    assert [n["name"] for n in namespaces["items"]] == ["team-a.apps"]
    executions = client.get("/api/v1/executions", headers=team_a).json()
    assert all(e["namespace"].startswith("team-a.") for e in executions)

    forbidden = [
        client.get("/api/v1/flows/team-b.apps/hello", headers=team_a),
        client.get("/api/v1/flows/team-b.apps/hello/revisions", headers=team_a),
        client.get("/api/v1/namespaces/team-b.apps", headers=team_a),
        client.get("/api/v1/namespaces/team-b.apps/secrets", headers=team_a),
        client.get(f"/api/v1/executions/{run_b['id']}", headers=team_a),
        client.get(f"/api/v1/executions/{run_b['id']}/logs", headers=team_a),
        client.get(f"/api/v1/executions/{run_b['id']}/lineage", headers=team_a),
        client.post("/api/v1/executions/team-b.apps/hello", json={}, headers=team_a),
        put_flow(client, FLOW_B.replace("hi", "changed"), **team_a),
        client.delete("/api/v1/flows/team-b.apps/hello", headers=team_a),
        client.put(
            "/api/v1/namespaces/team-b.apps/secrets/KEY", json={"value": "x"}, headers=team_a
        ),
        client.get("/api/v1/audit", headers=team_a),
    ]
    assert [r.status_code for r in forbidden] == [403] * len(forbidden)
    assert "outside" in forbidden[0].json()["message"]
    assert client.get("/api/v1/flows/team-b.apps/hello").json()["revision"] == 1
    assert len(client.get("/api/v1/executions?namespace=team-b.apps").json()) == 1
    assert client.get("/api/v1/namespaces/team-b.apps/secrets/KEY").json()["version"] == 1
    assert client.get("/api/v1/flows/team-a.apps/hello", headers=team_a).status_code == 200


def test_revisions_and_lineage_name_the_token_that_wrote_them(client: TestClient) -> None:
    terraform = token_headers(client, "terraform-ci", "editor")
    response = put_flow(client, FLOW_B, **terraform, **{"X-Flowplane-Origin": "terraform"})
    assert response.status_code == 201
    run = client.post("/api/v1/executions/team-b.apps/hello?wait=true", json={}).json()
    lineage = client.get(f"/api/v1/executions/{run['id']}/lineage").json()
    assert lineage["revision"]["origin"] == "terraform"
    assert lineage["revision"]["written_by"] == "terraform-ci"
    tokens = {t["name"]: t["id"] for t in client.get("/api/v1/tokens").json()}
    assert lineage["revision"]["written_by_token"] == tokens["terraform-ci"]
    tied = [(e["action"], e["actor"]) for e in lineage["audit_events"]]
    assert tied == [("flow.put", "terraform-ci"), ("execution.create", "admin")]
    assert all(e["request_id"] for e in lineage["audit_events"])


@pytest.fixture
def fresh_settings(engine: Engine, tmp_path: Path) -> Settings:
    return Settings(
        database_url=str(engine.url), data_dir=tmp_path, poll_sources=False, scheduler=False
    )


def test_first_start_prints_an_admin_token_once(
    fresh_settings: Settings, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(fresh_settings, engine=engine, workers=0)
    printed = capsys.readouterr().out
    secret = next(word for word in printed.split() if word.startswith("fpt_"))
    with TestClient(app) as client:
        assert client.get("/api/v1/tokens", headers=bearer(secret)).status_code == 200
    create_app(fresh_settings, engine=engine, workers=0)
    assert "fpt_" not in capsys.readouterr().out


def test_configured_admin_token_rotates_in_place(fresh_settings: Settings, engine: Engine) -> None:
    first = fresh_settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN)})
    second = fresh_settings.model_copy(update={"admin_token": SecretStr("fpt_rotated-admin")})
    with TestClient(create_app(first, engine=engine, workers=0)) as client:
        assert client.get("/api/v1/tokens", headers=bearer(ADMIN_TOKEN)).status_code == 200
    with TestClient(create_app(second, engine=engine, workers=0)) as client:
        assert client.get("/api/v1/tokens", headers=bearer(ADMIN_TOKEN)).status_code == 401
        tokens = client.get("/api/v1/tokens", headers=bearer("fpt_rotated-admin")).json()
    assert [t["name"] for t in tokens] == ["admin"]


def test_trusted_proxy_headers_count_only_from_the_proxy(
    fresh_settings: Settings, engine: Engine
) -> None:
    settings = fresh_settings.model_copy(
        update={
            "admin_token": SecretStr(ADMIN_TOKEN),
            "trusted_proxies": ["10.0.0.0/24"],
            "proxy_group_roles": {"ops": "viewer", "leads": "reviewer"},
        }
    )
    app = create_app(settings, engine=engine, workers=0)
    proxy_headers = {"Remote-User": "pat", "Remote-Groups": "ops, leads"}
    with TestClient(app, client=("10.0.0.7", 5000)) as via_proxy:
        listed = via_proxy.get("/api/v1/plans", headers=proxy_headers)
        assert listed.status_code == 200
        assert (
            via_proxy.post("/api/v1/plans/x/approve", json={}, headers=proxy_headers).status_code
            == 404
        )
        refused = via_proxy.get(
            "/api/v1/flows", headers={"Remote-User": "sam", "Remote-Groups": "guests"}
        )
        assert refused.status_code == 401
        assert via_proxy.get("/api/v1/tokens", headers=proxy_headers).status_code == 403
    with TestClient(app, client=("192.0.2.9", 5000)) as direct:
        assert direct.get("/api/v1/plans", headers=proxy_headers).status_code == 401


def test_request_ids_and_metrics(client: TestClient) -> None:
    put_flow(client, FLOW_B)
    client.post("/api/v1/executions/team-b.apps/hello?wait=true", json={})
    echoed = client.get("/api/v1/flows", headers={"X-Request-ID": "req-abc.1"})
    assert echoed.headers["X-Request-ID"] == "req-abc.1"
    assert len(client.get("/api/v1/flows").headers["X-Request-ID"]) == 32
    metrics = client.get("/metrics", headers={"Authorization": ""})
    assert metrics.status_code == 200
    body = metrics.text
    assert 'flowplane_executions{state="SUCCESS"} 1.0' in body
    assert "flowplane_queue_depth 0.0" in body
    assert 'route="/api/v1/flows/{namespace}/{flow_id}"' in body
    assert "flowplane_task_duration_seconds" in body


def test_secret_inputs_never_leave_the_api(client: TestClient) -> None:
    source = """id: gate
namespace: team-a.apps
inputs:
  - {id: password, type: SECRET}
  - {id: who, type: STRING}
tasks:
  - id: approve
    type: Pause
    onResume:
      - {id: otp, type: SECRET}
      - {id: reason, type: STRING}
"""
    response = client.put(
        "/api/v1/flows/team-a.apps/gate",
        content=source,
        headers={"Content-Type": "application/x-yaml"},
    )
    assert response.status_code == 201, response.text
    run = client.post(
        "/api/v1/executions/team-a.apps/gate?wait=true",
        json={"inputs": {"password": "hunter2-input", "who": "ops"}},
    ).json()
    assert run["inputs"] == {"password": "******", "who": "ops"}
    resumed = client.post(
        f"/api/v1/executions/{run['id']}/resume",
        json={"inputs": {"otp": "otp-991-secret", "reason": "ok"}},
    )
    assert resumed.status_code == 200, resumed.text
    for _ in range(100):
        detail = client.get(f"/api/v1/executions/{run['id']}").json()
        if detail["state"] == "SUCCESS":
            break
        time.sleep(0.05)
    pause = next(t for t in detail["task_runs"] if t["task_id"] == "approve")
    assert pause["outputs"]["onResume"] == {"otp": "******", "reason": "ok"}
    bodies = [
        resumed.text,
        client.get(f"/api/v1/executions/{run['id']}").text,
        client.get("/api/v1/executions").text,
        client.get(f"/api/v1/executions/{run['id']}/logs").text,
        client.get(f"/api/v1/executions/{run['id']}/lineage").text,
        client.get("/api/v1/audit").text,
    ]
    for body in bodies:
        assert "hunter2-input" not in body
        assert "otp-991-secret" not in body


def test_expiry_with_an_offset_is_kept_exactly(client: TestClient) -> None:
    created = client.post(
        "/api/v1/tokens",
        json={"name": "tz", "role": "viewer", "expires_at": "2099-01-01T02:00:00+02:00"},
    ).json()
    read = client.get(f"/api/v1/tokens/{created['id']}").json()
    assert datetime.fromisoformat(read["expires_at"]) == datetime(2099, 1, 1, tzinfo=UTC)
