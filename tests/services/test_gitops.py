"""GitOps end to end with a real Git repository made with `git` in a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import token_headers
from tests.helpers import commit, git, init_repo

BACKUP = """\
id: backup
namespace: platform.ops
tasks:
  - id: dump
    type: Log
    message: "backing up"
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path)


def add_source(client: TestClient, repo: Path, **policy: object) -> None:
    body = {"url": f"file://{repo}", "branch": "main", **policy}
    response = client.put("/api/v1/sources/flows", json=body)
    assert response.status_code == 201, response.text
    assert "webhook_secret" not in response.json()


def test_approval_by_a_second_person_activates_with_the_commit(
    client: TestClient, repo: Path
) -> None:
    sha = commit(repo, {"flows/platform.ops/backup.yaml": BACKUP}, "Add backup flow")
    add_source(client, repo, approval="approval", webhook_secret="s3cr3t-value")  # noqa: S106 - a test value that must not leak
    plan = client.post("/api/v1/sources/flows/sync").json()
    assert plan["status"] == "pending"
    assert plan["target_commit"] == sha
    assert [c["action"] for c in plan["changes"]] == ["add"]
    assert "+ add platform.ops/backup" in plan["text"]
    assert client.get("/api/v1/flows/platform.ops/backup").status_code == 404

    own = client.post(
        f"/api/v1/plans/{plan['id']}/approve", json={}, headers=token_headers(client, "Dana Dev")
    )
    assert own.status_code == 403
    approved = client.post(
        f"/api/v1/plans/{plan['id']}/approve",
        json={"comment": "looks good"},
        headers=token_headers(client, "rita"),
    ).json()
    assert approved["status"] == "applied"
    assert approved["approvals"][0]["actor"] == "rita"

    flow = client.get("/api/v1/flows/platform.ops/backup").json()
    assert flow["origin"] == "git:flows"
    assert flow["git_commit"]["sha"] == sha
    assert flow["git_commit"]["author"] == "Dana Dev"
    assert flow["plan_id"] == plan["id"]

    run = client.post("/api/v1/executions/platform.ops/backup?wait=true", json={}).json()
    assert run["git_commit_sha"] == sha
    assert run["plan_id"] == plan["id"]
    lineage = client.get(f"/api/v1/executions/{run['id']}/lineage").json()
    assert lineage["revision"]["origin"] == "git:flows"
    assert lineage["git_commit"]["sha"] == sha
    assert lineage["git_commit"]["message"] == "Add backup flow"
    assert lineage["plan"]["id"] == plan["id"]
    assert [(a["actor"], a["comment"]) for a in lineage["approvals"]] == [("rita", "looks good")]
    events = client.get("/api/v1/audit").json()
    audit = [(e["action"], e["actor"]) for e in events]
    # The caller who synced is the actor; the commit's author is a separate field.
    assert ("plan.create", "admin") in audit
    created = next(e for e in events if e["action"] == "plan.create")
    assert created["summary"]["commit_author"] == "Dana Dev"
    assert ("plan.approve", "rita") in audit
    assert ("plan.apply", "rita") in audit

    refused = client.put("/api/v1/flows/platform.ops/backup", json={"content": BACKUP + "#x\n"})
    assert refused.status_code == 409
    assert "Git source 'flows'" in refused.json()["message"]
    everything = str(client.get("/api/v1/sources/flows").json()) + str(approved)
    assert "s3cr3t-value" not in everything


def test_a_broken_commit_activates_nothing_and_names_file_and_line(
    client: TestClient, repo: Path
) -> None:
    commit(repo, {"flows/platform.ops/backup.yaml": BACKUP}, "Add backup flow")
    add_source(client, repo)
    assert client.post("/api/v1/sources/flows/sync").json()["status"] == "applied"
    broken = BACKUP.replace("type: Log", "type: Lgo")
    other = BACKUP.replace("id: backup", "id: restore")
    commit(
        repo,
        {"flows/platform.ops/backup.yaml": broken, "flows/platform.ops/restore.yaml": other},
        "Break one, add one",
    )
    plan = client.post("/api/v1/sources/flows/sync").json()
    assert plan["status"] == "failed"
    problem = plan["problems"][0]
    assert (problem["file"], problem["line"]) == ("flows/platform.ops/backup.yaml", 4)
    assert "unknown task type 'Lgo'" in problem["message"]
    assert client.get("/api/v1/flows/platform.ops/restore").status_code == 404
    assert client.get("/api/v1/flows/platform.ops/backup").json()["revision"] == 1


def test_same_commit_makes_one_plan_and_newer_supersedes(client: TestClient, repo: Path) -> None:
    commit(repo, {"flows/platform.ops/backup.yaml": BACKUP}, "one")
    add_source(client, repo, approval="approval")
    first = client.post("/api/v1/sources/flows/sync").json()
    again = client.post("/api/v1/sources/flows/sync").json()
    assert again["id"] == first["id"]
    commit(repo, {"flows/platform.ops/backup.yaml": BACKUP.replace("backing up", "bk")}, "two")
    newer = client.post("/api/v1/sources/flows/sync").json()
    assert newer["id"] != first["id"]
    assert client.get(f"/api/v1/plans/{first['id']}").json()["status"] == "superseded"
    late = client.post(
        f"/api/v1/plans/{first['id']}/approve", json={}, headers=token_headers(client, "rita")
    )
    assert late.status_code == 409


def test_prune_removes_deleted_flows_only_when_allowed(client: TestClient, repo: Path) -> None:
    commit(repo, {"flows/platform.ops/backup.yaml": BACKUP}, "add")
    add_source(client, repo)
    client.post("/api/v1/sources/flows/sync")
    git(repo, "rm", "-q", "flows/platform.ops/backup.yaml")
    commit(repo, {"README.md": "flows\n"}, "remove backup")
    kept = client.post("/api/v1/sources/flows/sync").json()
    # Prune is off: the flow stays live, so the plan says so instead of "remove".
    assert kept["status"] == "no_changes"
    assert [c["action"] for c in kept["changes"]] == ["orphan"]
    assert client.get("/api/v1/flows/platform.ops/backup").status_code == 200
    client.put("/api/v1/sources/flows", json={"url": f"file://{repo}", "prune": True})
    commit(repo, {"README.md": "flows, pruned\n"}, "prune now")
    client.post("/api/v1/sources/flows/sync")
    assert client.get("/api/v1/flows/platform.ops/backup").status_code == 404


def signed(secret: str, body: bytes) -> str:
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415

    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_signed_push_webhooks(client: TestClient, repo: Path) -> None:
    sha = commit(repo, {"flows/platform.ops/backup.yaml": BACKUP}, "add")
    add_source(client, repo, webhook_secret="hook-secret")  # noqa: S106 - test value
    url = "/api/v1/sources/flows/webhook"
    body = b'{"ref": "refs/heads/main"}'

    bad = client.post(url, content=body, headers={"X-Hub-Signature-256": "sha256=00"})
    assert bad.status_code == 401
    assert client.get("/api/v1/plans").json() == []
    unsigned = client.post(url, content=body)
    assert unsigned.status_code == 401

    github = {
        "X-Hub-Signature-256": "sha256=" + signed("hook-secret", body),
        "X-GitHub-Delivery": "d-1",
    }
    done = client.post(url, content=body, headers=github).json()
    assert done["status"] == "planned"
    assert done["plan"]["target_commit"] == sha
    assert done["plan"]["status"] == "applied"
    assert client.post(url, content=body, headers=github).json()["status"] == "duplicate"

    other = b'{"ref": "refs/heads/feature"}'
    gitea = {"X-Gitea-Signature": signed("hook-secret", other), "X-Gitea-Delivery": "d-2"}
    assert client.post(url, content=other, headers=gitea).json()["status"] == "ignored"

    gitlab = {"X-Gitlab-Token": "hook-secret", "X-Gitlab-Event-UUID": "d-3"}
    assert client.post(url, content=body, headers=gitlab).json()["status"] == "planned"
    assert client.post(url, content=body, headers={"X-Gitlab-Token": "nope"}).status_code == 401


def test_poller_syncs_due_sources(engine, repo: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from controlplane.services.gitops.poller import Poller  # noqa: PLC0415
    from controlplane.services.gitops.sources import SourceInput, put_source  # noqa: PLC0415

    commit(repo, {"flows/platform.ops/backup.yaml": BACKUP}, "add")
    from controlplane.services.secrets import load_keyring  # noqa: PLC0415

    put_source(
        engine,
        "flows",
        SourceInput(url=f"file://{repo}", poll_interval_seconds=60),
        actor="test",
        keyring=load_keyring(tmp_path),
    )
    poller = Poller(engine, tmp_path / "git")
    assert poller.poll_due(1000.0) == 1
    assert poller.poll_due(1030.0) == 0  # not due yet
    assert poller.poll_due(1061.0) == 1


def test_plan_preview_of_a_checkout_stores_nothing(client: TestClient, repo: Path) -> None:
    from controlplane.plan_preview import plan_checkout  # noqa: PLC0415

    commit(repo, {"flows/platform.ops/backup.yaml": BACKUP}, "add")
    add_source(client, repo)
    client.post("/api/v1/sources/flows/sync")
    (repo / "flows/platform.ops/backup.yaml").write_text(BACKUP.replace("backing up", "bk"))
    (repo / "flows/platform.ops/new.yaml").write_text(BACKUP.replace("id: backup", "id: new"))
    preview = plan_checkout(repo, client, "flows")
    assert preview.valid
    assert {(c.flow_id, str(c.action)) for c in preview.changes} == {
        ("backup", "change"),
        ("new", "add"),
    }
    changed = next(c for c in preview.changes if c.flow_id == "backup")
    assert [f.path for f in changed.fields] == ["tasks[0].message"]
    plans_before = len(client.get("/api/v1/plans").json())
    assert plans_before == 1
    assert client.get("/api/v1/flows/platform.ops/new").status_code == 404


def test_plan_preview_counts_secrets_the_server_already_holds(
    client: TestClient, repo: Path
) -> None:
    from controlplane.plan_preview import plan_checkout, sealed_namespaces  # noqa: PLC0415

    uses = (
        "id: uses\nnamespace: platform.ops\ntasks:\n"
        "  - {id: log, type: Log, message: \"{{ secret('DB') }} {{ secret('OTHER') }}\"}\n"
    )
    commit(repo, {"flows/platform.ops/uses.yaml": uses}, "add")
    add_source(client, repo)
    client.put("/api/v1/namespaces/platform.ops/secrets/DB", json={"value": "db-preview-value"})
    preview = plan_checkout(repo, client, "flows")
    assert not preview.valid
    messages = [p.message for p in preview.problems]
    assert any("OTHER" in m for m in messages), messages
    assert not any("'DB'" in m for m in messages), messages
    client.put("/api/v1/namespaces/platform.ops/secrets/OTHER", json={"value": "other-value"})
    assert plan_checkout(repo, client, "flows").valid

    # A key only a new .age file defines cannot be checked without the server's identity:
    # the preview accepts it for that namespace (the server's sync checks it).
    newer = uses.replace("OTHER", "ONLY_IN_AGE")
    (repo / "flows/platform.ops/uses.yaml").write_text(newer)
    assert not plan_checkout(repo, client, "flows").valid
    (repo / "secrets").mkdir()
    (repo / "secrets/platform.ops.age").write_bytes(b"age-encryption.org/v1 sealed")
    assert sealed_namespaces(repo) == ["platform.ops"]
    assert plan_checkout(repo, client, "flows").valid
