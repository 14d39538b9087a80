"""Files read from Git obey the API's body limit: one too large is a plan problem, unread."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from controlplane.services.gitops.repository import (
    DEFAULT_MAX_FILE_BYTES,
    read_directory,
    read_snapshot,
)
from controlplane.settings import Settings
from tests.services.test_gitops import BACKUP, add_source, commit, repo  # noqa: F401 - fixture

# A valid flow padded past the limit with a comment, so only its size is wrong.
HUGE = BACKUP.replace("id: backup", "id: huge") + "# " + "x" * DEFAULT_MAX_FILE_BYTES + "\n"


def test_the_default_limit_is_the_api_body_limit() -> None:
    assert Settings().max_body_bytes == DEFAULT_MAX_FILE_BYTES


def test_a_file_over_the_limit_is_left_unread_and_named(repo: Path, tmp_path: Path) -> None:  # noqa: F811
    commit(
        repo,
        {
            "flows/platform.ops/backup.yaml": BACKUP,
            "flows/platform.ops/big.yaml": BACKUP + "# " + "x" * 5000 + "\n",
            "secrets/platform.ops.age": "y" * 5000,
        },
        "Add flows",
    )
    snapshot = read_snapshot(
        f"file://{repo}", "main", tmp_path / "cache", "flows/", max_file_bytes=4096
    )
    assert [f.path for f in snapshot.files] == ["flows/platform.ops/backup.yaml"]
    assert snapshot.secret_files == ()
    assert sorted(p.file or "" for p in snapshot.problems) == [
        "flows/platform.ops/big.yaml",
        "secrets/platform.ops.age",
    ]
    assert "larger than the 4096-byte limit" in snapshot.problems[0].message

    local = read_directory(repo, "flows/", "secrets/", max_file_bytes=4096)
    assert [f.path for f in local.files] == ["flows/platform.ops/backup.yaml"]
    assert [p.render() for p in local.problems] == [p.render() for p in snapshot.problems]
    assert local.content_sha256 != read_directory(repo, "flows/", "secrets/").content_sha256


def test_a_huge_flow_in_git_fails_the_plan_and_activates_nothing(
    client: TestClient,
    repo: Path,  # noqa: F811
) -> None:
    commit(
        repo,
        {"flows/platform.ops/backup.yaml": BACKUP, "flows/platform.ops/huge.yaml": HUGE},
        "Add a huge flow",
    )
    add_source(client, repo)
    response = client.post("/api/v1/sources/flows/sync")
    assert response.status_code == 200, response.text[:500]
    plan = response.json()
    assert plan["status"] == "failed"
    assert [p["file"] for p in plan["problems"]] == ["flows/platform.ops/huge.yaml"]
    assert "larger than the" in plan["problems"][0]["message"]
    assert client.get("/api/v1/flows/platform.ops/backup").status_code == 404
    listing = client.get("/api/v1/plans")
    assert len(listing.content) < DEFAULT_MAX_FILE_BYTES
