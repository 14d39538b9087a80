"""Deleting a Git source: syncing stops, flows stay and are released, lineage is kept."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import token_headers
from tests.services.test_gitops import add_source, commit, git

FLOW = "id: hello\nnamespace: team.apps\ntasks:\n  - {id: log, type: Log, message: hi}\n"


def test_deleting_a_source_releases_its_flows_and_keeps_lineage(
    client: TestClient, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    sha = commit(repo, {"flows/team.apps/hello.yaml": FLOW}, "Add hello")
    add_source(client, repo)
    assert client.post("/api/v1/sources/flows/sync").json()["status"] == "applied"
    url = "/api/v1/flows/team.apps/hello"
    yaml = {"Content-Type": "application/x-yaml"}
    owned = client.put(url, content=FLOW.replace("hi", "api"), headers=yaml)
    assert owned.status_code == 409
    assert "'flows'" in owned.json()["message"]

    commit(repo, {"flows/team.apps/hello.yaml": FLOW.replace("hi", "v2")}, "v2")
    client.put("/api/v1/sources/flows", json={"url": f"file://{repo}", "approval": "approval"})
    pending = client.post("/api/v1/sources/flows/sync").json()
    assert pending["status"] == "pending"

    editor = token_headers(client, "ed", "editor")
    assert client.delete("/api/v1/sources/flows", headers=editor).status_code == 403
    assert client.delete("/api/v1/sources/flows").status_code == 204
    assert client.get("/api/v1/sources/flows").status_code == 404
    assert client.get("/api/v1/sources").json() == []
    assert client.delete("/api/v1/sources/flows").status_code == 404
    assert client.post("/api/v1/sources/flows/sync").status_code == 404
    assert client.get(f"/api/v1/plans/{pending['id']}").json()["status"] == "superseded"
    approve = client.post(
        f"/api/v1/plans/{pending['id']}/approve",
        json={},
        headers=token_headers(client, "rita"),
    )
    assert approve.status_code == 409

    # The flow is still live on the first commit, and its lineage still names it.
    live = client.get(url).json()
    assert live["revision"] == 1
    run = client.post("/api/v1/executions/team.apps/hello?wait=true", json={}).json()
    lineage = client.get(f"/api/v1/executions/{run['id']}/lineage").json()
    assert lineage["git_commit"]["sha"] == sha
    # Released: an API write is accepted now.
    assert client.put(url, content=FLOW.replace("hi", "api"), headers=yaml).status_code == 200
    # The id can be used again; it is a new source.
    again = client.put("/api/v1/sources/flows", json={"url": f"file://{repo}"})
    assert again.status_code == 201
