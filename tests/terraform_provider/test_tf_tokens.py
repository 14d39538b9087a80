"""flowplane_api_token and provider authentication, driven by real Terraform against a live server.

The server runs with FLOWPLANE_ADMIN_TOKEN set (see conftest); the module's
workspaces use that admin token unless a test gives another.
"""

from __future__ import annotations

import httpx
from tf_harness import Workspace

# Spelled with a fraction; the server answers "2099-01-01T00:00:00Z". (An offset other
# than Z is not used here: on SQLite the server stores it unconverted.)
EXPIRES = "2099-01-01T00:00:00.000Z"


def token_hcl(role: str = "viewer", expires_at: str = EXPIRES) -> str:
    return (
        'resource "flowplane_api_token" "ci" {\n'
        '  name       = "tf-ci-reader"\n'
        f'  role       = "{role}"\n'
        '  namespaces = ["tf.tok.*"]\n'
        f'  expires_at = "{expires_at}"\n'
        "}\n"
    )


def as_bearer(server, secret: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {secret}"}
    )


def test_token_works_with_its_role_is_replaced_and_revoked(workspace, server, tmp_path):
    server.http.put("/api/v1/namespaces/tf.tok.a", json={}).raise_for_status()
    workspace.write(token_hcl())
    created = workspace.apply()
    state = workspace.state()["flowplane_api_token.ci"]
    secret = state["token"]
    assert secret
    assert secret not in created.output  # sensitive: redacted in plan and apply output
    assert state["id"].startswith("tok_")
    assert state["namespaces"] == ["tf.tok.*"]
    assert state["created_by"] == "admin"
    # The server answers in UTC; the configured spelling of the same instant is kept.
    assert state["expires_at"] == EXPIRES
    token_id = state["id"]
    assert server.http.get(f"/api/v1/tokens/{token_id}").json()["expires_at"] == (
        "2099-01-01T00:00:00Z"
    )
    unchanged = workspace.plan()
    assert unchanged.code == 0, unchanged.output

    # The secret is a working viewer token, scoped to its namespaces.
    with as_bearer(server, secret) as viewer:
        assert viewer.get("/api/v1/namespaces/tf.tok.a").status_code == 200
        assert viewer.put("/api/v1/namespaces/tf.tok.a", json={}).status_code == 403

    # Terraform configured with it gets a clear refusal when it tries to write.
    as_viewer = Workspace(tmp_path / "viewer", workspace.env, server.url, token=secret)
    as_viewer.write('resource "flowplane_namespace" "x" {\n  name = "tf.tok.b"\n}\n')
    refused = as_viewer.run("apply", "-auto-approve", "-no-color", "-input=false")
    assert refused.code == 1
    assert "Flowplane refused the API token (HTTP 403: not allowed)" in refused.stderr
    assert secret not in refused.output
    assert server.namespace("tf.tok.b") is None

    # A new role replaces the token: the old secret stops working.
    workspace.write(token_hcl(role="editor"))
    replaced = workspace.plan()
    assert replaced.code == 2, replaced.output
    assert "flowplane_api_token.ci must be replaced" in replaced.stdout
    assert '~ role       = "viewer" -> "editor" # forces replacement' in replaced.stdout
    workspace.apply()
    editor_secret = workspace.state()["flowplane_api_token.ci"]["token"]
    assert editor_secret != secret
    with as_bearer(server, secret) as old, as_bearer(server, editor_secret) as editor:
        assert old.get("/api/v1/namespaces/tf.tok.a").status_code == 401
        assert editor.put("/api/v1/namespaces/tf.tok.a", json={}).status_code == 200

    # Revoked outside Terraform: gone from state at the next refresh, so planned anew.
    token_id = workspace.state()["flowplane_api_token.ci"]["id"]
    assert server.http.delete(f"/api/v1/tokens/{token_id}").status_code == 204
    recreate = workspace.plan()
    assert recreate.code == 2, recreate.output
    assert "flowplane_api_token.ci will be created" in recreate.stdout
    workspace.apply()
    assert workspace.state()["flowplane_api_token.ci"]["id"] != token_id

    last_secret = workspace.state()["flowplane_api_token.ci"]["token"]
    workspace.destroy()
    with as_bearer(server, last_secret) as revoked:
        assert revoked.get("/api/v1/namespaces/tf.tok.a").status_code == 401


def test_token_attributes_are_checked_at_plan(workspace):
    workspace.write(token_hcl(role="owner", expires_at="next tuesday"))
    plan = workspace.plan()
    assert plan.code == 1
    assert "role must be one of viewer, editor, reviewer, admin" in plan.stderr
    assert "expires_at must be an RFC 3339 time with an offset" in plan.stderr


def test_wrong_api_token_is_named_in_the_error(server, tf_env, reattach, tmp_path):
    wrong = Workspace(
        tmp_path / "wrong",
        {**tf_env, "TF_REATTACH_PROVIDERS": reattach},
        server.url,
        token="fpt_not-a-real-token",  # noqa: S106 - a test value
    )
    wrong.write('data "flowplane_namespace" "x" {\n  name = "tf.tok.a"\n}\n')
    plan = wrong.plan()
    assert plan.code == 1
    assert "Flowplane refused the API token (HTTP 401)" in plan.stderr
    assert "Check the provider's api_token (or FLOWPLANE_TOKEN)" in " ".join(plan.stderr.split())
    assert "fpt_not-a-real-token" not in plan.output

    anonymous = Workspace(tmp_path / "none", wrong.env, server.url, token=None)
    anonymous.write('data "flowplane_namespace" "x" {\n  name = "tf.tok.a"\n}\n')
    missing = anonymous.plan()
    assert missing.code == 1
    assert "Flowplane refused the API token (HTTP 401)" in missing.stderr
