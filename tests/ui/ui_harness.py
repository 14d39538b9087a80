"""Helpers shared by the UI tests: real Git repositories, pending plans, signed-in sessions."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from fastapi.testclient import TestClient

AUTHOR = "Dana Dev"
BACKUP = """\
id: backup
namespace: platform.ops
tasks:
  - id: dump
    type: io.kestra.plugin.core.log.Log
    message: "backing up"
"""
GATE = """\
id: gate
namespace: platform.ops
inputs:
  - id: password
    type: SECRET
    required: false
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: reason
        type: STRING
      - id: replicas
        type: INT
        defaults: 1
      - id: dry_run
        type: BOOLEAN
        required: false
      - id: region
        type: SELECT
        values: [eu-west, us-east]
        required: false
  - id: after
    type: io.kestra.plugin.core.output.OutputValues
    values:
      reason: "{{ outputs.approve.onResume.reason }}"
      replicas: "{{ outputs.approve.onResume.replicas }}"
"""
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def git(repo: Path, *args: str, author: str = AUTHOR) -> str:
    email = f"{author.split(maxsplit=1)[0].lower()}@example.com"
    env = {
        "GIT_AUTHOR_NAME": author,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": author,
        "GIT_COMMITTER_EMAIL": email,
        "HOME": str(repo),
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def make_repo(root: Path) -> Path:
    repo = root / "flows-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return repo


def commit(repo: Path, files: dict[str, str], message: str, author: str = AUTHOR) -> str:
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message, author=author)
    return git(repo, "rev-parse", "HEAD")


def pending_plan(api: TestClient, repo: Path, headers: dict[str, str] | None = None) -> dict:
    """Commit the backup flow as Dana, register an ``approval`` source and sync it."""
    sha = commit(repo, {"flows/platform.ops/backup.yaml": BACKUP}, "Add backup flow")
    body = {"url": f"file://{repo}", "branch": "main", "approval": "approval"}
    response = api.put("/api/v1/sources/flows", json=body, headers=headers or {})
    assert response.status_code == 201, response.text
    plan = api.post("/api/v1/sources/flows/sync", headers=headers or {}).json()
    assert plan["status"] == "pending", plan
    assert plan["target_commit"] == sha
    return plan


def new_token(api: TestClient, name: str, role: str, namespaces: tuple[str, ...] = ("*",)) -> str:
    response = api.post(
        "/api/v1/tokens", json={"name": name, "role": role, "namespaces": list(namespaces)}
    )
    assert response.status_code == 201, response.text
    return response.json()["token"]


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page carries no CSRF token"
    return match[1]


def browser(api: TestClient) -> TestClient:
    """A second client on the same app, with its own cookie jar and no bearer token."""
    return TestClient(api.app)


def sign_in(api: TestClient, token: str) -> TestClient:
    """A browser-like client signed in to the UI with ``token``."""
    web = browser(api)
    form = web.get("/ui/signin")
    response = web.post(
        "/ui/signin",
        data={"token": token, "csrf_token": csrf_of(form.text), "next": ""},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return web


GREET = """\
id: greet
namespace: platform.ops
inputs:
  - id: who
    type: STRING
  - id: times
    type: INT
    defaults: 1
  - id: loud
    type: BOOLEAN
    defaults: false
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ inputs.who }} x{{ inputs.times }}"
  - id: check
    type: io.kestra.plugin.core.flow.If
    condition: "{{ inputs.loud }}"
    then:
      - id: shout
        type: io.kestra.plugin.core.log.Log
        message: "HELLO"
    else:
      - id: whisper
        type: io.kestra.plugin.core.log.Log
        level: DEBUG
        message: "psst"
"""
BREAKS = """\
id: breaks
namespace: platform.ops
tasks:
  - id: prepare
    type: io.kestra.plugin.core.log.Log
    message: preparing
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: "disk full"
"""


def source_body(repo: Path, **policy: object) -> dict:
    """A Git source on ``repo``'s main branch with ``policy`` (approval, required_approvals...)."""
    return {"url": f"file://{repo}", "branch": "main", **policy}
