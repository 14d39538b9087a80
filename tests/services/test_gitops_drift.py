"""Drift against the last applied commit, self-heal, and rollback to an older commit."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from controlplane.metrics import REGISTRY
from controlplane.services.flows import Provenance, delete_flow, put_flow
from tests.conftest import token_headers
from tests.helpers import commit, git, init_repo
from tests.services.test_gitops import BACKUP

GIT = Provenance(origin="git:flows", actor="an operator with database access")


def flow(flow_id: str, message: str = "hello") -> str:
    return BACKUP.replace("id: backup", f"id: {flow_id}").replace("backing up", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path)


def test_drift_is_reported_and_self_heal_plans_the_corrections(
    client: TestClient, engine: Engine, repo: Path
) -> None:
    sha = commit(
        repo,
        {f"flows/platform.ops/{name}.yaml": flow(name) for name in ("a", "b", "c", "d")},
        "four flows",
    )
    client.put("/api/v1/sources/flows", json={"url": f"file://{repo}"})
    applied = client.post("/api/v1/sources/flows/sync").json()
    assert applied["status"] == "applied"
    clean = client.get("/api/v1/sources/flows/drift").json()
    assert (clean["commit"], clean["drifted"], clean["items"]) == (sha, False, [])

    put_flow(engine, "platform.ops", "a", flow("a", "edited in place"), GIT)
    delete_flow(engine, "platform.ops", "b", GIT)
    delete_flow(engine, "platform.ops", "c", GIT)
    taken = client.put("/api/v1/flows/platform.ops/c", json={"content": flow("c", "mine now")})
    assert taken.status_code == 201

    report = client.get("/api/v1/sources/flows/drift").json()
    assert report["drifted"] is True
    assert [(i["flow_id"], i["kind"]) for i in report["items"]] == [
        ("a", "changed"),
        ("b", "deleted"),
        ("c", "unowned"),
    ]
    assert "now owned by api" in report["items"][2]["detail"]

    # Without self_heal, syncing the same commit changes nothing.
    assert client.post("/api/v1/sources/flows/sync").json()["id"] == applied["id"]
    client.put("/api/v1/sources/flows", json={"url": f"file://{repo}", "self_heal": True})
    healed = client.post("/api/v1/sources/flows/sync").json()
    assert healed["kind"] == "heal"
    assert healed["status"] == "applied"
    assert healed["target_commit"] == sha
    assert {c["flow_id"]: c["action"] for c in healed["changes"]} == {
        "a": "change",
        "b": "add",
        "c": "take_over",
        "d": "unchanged",
    }
    assert client.get("/api/v1/sources/flows/drift").json()["items"] == []
    restored = client.get("/api/v1/flows/platform.ops/c").json()
    assert (restored["origin"], restored["git_commit"]["sha"]) == ("git:flows", sha)
    assert "hello" in client.get("/api/v1/flows/platform.ops/a").json()["content"]
    # Healed: the next sync has nothing to correct and returns the commit's plan.
    assert client.post("/api/v1/sources/flows/sync").json()["id"] == applied["id"]


def test_rollback_goes_through_review_and_keeps_lineage(
    client: TestClient, engine: Engine, repo: Path
) -> None:
    first = commit(repo, {"flows/platform.ops/a.yaml": flow("a", "v1")}, "v1")
    client.put("/api/v1/sources/flows", json={"url": f"file://{repo}"})
    client.post("/api/v1/sources/flows/sync")
    commit(repo, {"flows/platform.ops/a.yaml": flow("a", "v2")}, "v2")
    latest = client.post("/api/v1/sources/flows/sync").json()
    assert latest["status"] == "applied"
    client.put("/api/v1/sources/flows", json={"url": f"file://{repo}", "approval": "approval"})

    olga = token_headers(client, "olga", role="reviewer")
    asked = client.post("/api/v1/sources/flows/rollback", json={"commit": first}, headers=olga)
    assert asked.status_code == 200, asked.text
    plan = asked.json()
    assert (plan["kind"], plan["status"], plan["requested_by"]) == ("rollback", "pending", "olga")
    assert plan["target_commit"] == first
    assert plan["text"].startswith(f"Rollback to commit {first[:12]}, requested by olga.")
    own = client.post(f"/api/v1/plans/{plan['id']}/approve", json={}, headers=olga)
    assert own.status_code == 403
    assert "asked for this rollback" in own.json()["message"]
    done = client.post(
        f"/api/v1/plans/{plan['id']}/approve", json={}, headers=token_headers(client, "rita")
    ).json()
    assert done["status"] == "applied"

    live = client.get("/api/v1/flows/platform.ops/a").json()
    assert "v1" in live["content"]
    assert (live["git_commit"]["sha"], live["plan_id"]) == (first, plan["id"])
    with engine.connect() as connection:
        marks = connection.execute(
            text("SELECT revision, rollback, git_commit_sha FROM flow_revisions ORDER BY revision")
        ).all()
    assert [(r, bool(m), s) for r, m, s in marks] == [
        (1, False, first),
        (2, False, latest["target_commit"]),
        (3, True, first),
    ]
    # The rollback holds until a new commit arrives.
    assert client.post("/api/v1/sources/flows/sync").json()["id"] == latest["id"]
    commit(repo, {"flows/platform.ops/a.yaml": flow("a", "v3")}, "v3")
    newer = client.post("/api/v1/sources/flows/sync").json()
    assert (newer["kind"], newer["status"]) == ("sync", "pending")
    assert newer["changes"][0]["from_revision"] == 3


def test_rollback_refuses_commits_outside_the_branch(client: TestClient, repo: Path) -> None:
    commit(repo, {"flows/platform.ops/a.yaml": flow("a")}, "v1")
    git(repo, "checkout", "-q", "-b", "feature")
    elsewhere = commit(repo, {"flows/platform.ops/a.yaml": flow("a", "feature")}, "feature")
    git(repo, "checkout", "-q", "main")
    client.put("/api/v1/sources/flows", json={"url": f"file://{repo}"})
    client.post("/api/v1/sources/flows/sync")
    # Only the branch is fetched: a commit of another branch is unknown here.
    unknown = client.post("/api/v1/sources/flows/rollback", json={"commit": elsewhere})
    assert unknown.status_code == 404
    # A commit the server saw, then force-pushed away, is no longer in the history.
    dropped = commit(repo, {"flows/platform.ops/a.yaml": flow("a", "dropped")}, "dropped")
    client.post("/api/v1/sources/flows/sync")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    commit(repo, {"flows/platform.ops/a.yaml": flow("a", "instead")}, "instead")
    client.post("/api/v1/sources/flows/sync")
    outside = client.post("/api/v1/sources/flows/rollback", json={"commit": dropped})
    assert outside.status_code == 400
    assert "not in the history of branch 'main'" in outside.json()["message"]
    missing = client.post("/api/v1/sources/nope/rollback", json={"commit": "abc1234"})
    assert missing.status_code == 404


def test_sync_and_plan_durations_are_observed(client: TestClient, repo: Path) -> None:
    def count(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before_sync = count("flowplane_sync_duration_seconds_count", source="metered")
    before_plan = count("flowplane_plan_duration_seconds_count")
    commit(repo, {"flows/platform.ops/a.yaml": flow("a")}, "v1")
    client.put("/api/v1/sources/metered", json={"url": f"file://{repo}"})
    client.post("/api/v1/sources/metered/sync")
    assert count("flowplane_sync_duration_seconds_count", source="metered") == before_sync + 1
    assert count("flowplane_plan_duration_seconds_count") == before_plan + 1
    assert "flowplane_sync_duration_seconds_bucket" in client.get("/metrics").text
