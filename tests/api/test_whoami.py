"""``GET /api/v1/whoami``: a stable server id, the version, and the caller."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane import __version__
from controlplane.api.routes.whoami import server_id
from tests.conftest import token_headers


def test_whoami_names_the_server_and_the_caller(client: TestClient, engine: Engine) -> None:
    first = client.get("/api/v1/whoami")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["product"] == "flowplane"
    assert body["version"] == __version__
    assert body["server_id"].startswith("fps_")
    assert body["caller"]["role"] == "admin"
    assert body["caller"]["scopes"] == ["*"]
    # Stable: the same on every call, and what the database holds.
    assert client.get("/api/v1/whoami").json()["server_id"] == body["server_id"]
    assert server_id(engine) == body["server_id"]

    scoped = token_headers(client, "team-a-ci", role="viewer", namespaces=("team-a.*",))
    caller = client.get("/api/v1/whoami", headers=scoped).json()["caller"]
    assert caller == {"name": "team-a-ci", "role": "viewer", "scopes": ["team-a.*"]}


def test_whoami_needs_a_valid_token(client: TestClient) -> None:
    refused = client.get("/api/v1/whoami", headers={"Authorization": "Bearer fpt_nope"})
    assert refused.status_code == 401
