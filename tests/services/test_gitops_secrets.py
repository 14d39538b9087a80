"""Namespace secrets synced from age-encrypted files in Git, and encrypted webhook secrets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyrage
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from controlplane.services.gitops.secret_files import encrypt_secret_map
from controlplane.services.secrets import load_keyring
from tests.conftest import token_headers
from tests.helpers import init_repo
from tests.services.test_gitops import commit, git, signed

DB_PASSWORD = "pw-Zq81-4f7c-unique"  # noqa: S105 - a test value that must never leak
API_KEY = "api-Xy22-9e1b-unique"
VALUES = (DB_PASSWORD, API_KEY)


def shell_flow() -> str:
    # The script proves it got the real value by its digest: a sandboxed script
    # cannot write to the host, and the value itself must appear in no source.
    digest = hashlib.sha256(DB_PASSWORD.encode()).hexdigest()[:16]
    return f"""\
id: dump
namespace: platform.ops
tasks:
  - id: write
    type: io.kestra.plugin.scripts.shell.Commands
    env:
      PW: "{{{{ secret('DB_PASSWORD') }}}}"
    commands:
      - test "$(printf %s "$PW" | sha256sum | cut -c1-16)" = "{digest}" && echo matched
      - echo "password is $PW"
"""


def uses_key(key: str) -> str:
    return f"""\
id: uses
namespace: platform.ops
tasks:
  - id: log
    type: Log
    message: "{{{{ secret('{key}') }}}}"
"""


PLAIN = """\
id: uses
namespace: platform.ops
tasks:
  - id: log
    type: Log
    message: "no secrets here"
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path)


def sealed(tmp_path: Path, values: dict[str, Any]) -> bytes:
    """An .age file for the test server (the client fixture's data dir is tmp_path)."""
    return encrypt_secret_map(values, load_keyring(tmp_path).recipient)


def commit_secrets(repo: Path, data: bytes, message: str, namespace: str = "platform.ops") -> str:
    path = repo / "secrets" / f"{namespace}.age"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return commit(repo, {}, message)


class Recorder:
    """Every response body the test sees, for the leak check at the end."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.bodies: list[str] = []

    def __call__(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.client.request(method, url, **kwargs)
        self.bodies.append(response.text)
        return response


def everything_stored(engine: Engine) -> str:
    tables = ("plans", "logs", "audit_events", "executions", "task_runs", "flow_revisions")
    dumped = []
    with engine.connect() as connection:
        for table in tables:
            rows = connection.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608 - fixed names
            dumped.extend(json.dumps([str(v) for v in row]) for row in rows)
    return "\n".join(dumped)


def test_a_secret_from_git_reaches_a_task_and_leaks_nowhere(
    client: TestClient, engine: Engine, repo: Path, tmp_path: Path
) -> None:
    call = Recorder(client)
    commit(repo, {"flows/platform.ops/dump.yaml": shell_flow()}, "add dump")
    commit_secrets(
        repo, sealed(tmp_path, {"DB_PASSWORD": DB_PASSWORD, "API_KEY": API_KEY}), "secrets"
    )
    body = {"url": f"file://{repo}", "approval": "approval"}
    assert call("PUT", "/api/v1/sources/flows", json=body).status_code == 201

    plan = call("POST", "/api/v1/sources/flows/sync").json()
    assert plan["status"] == "pending", plan
    assert plan["secret_changes"] == [
        {"namespace": "platform.ops", "key": "API_KEY", "action": "add"},
        {"namespace": "platform.ops", "key": "DB_PASSWORD", "action": "add"},
    ]
    assert "+ secret platform.ops/DB_PASSWORD: added (sensitive)" in plan["text"]
    # Nothing is written before approval.
    assert call("GET", "/api/v1/namespaces/platform.ops/secrets").json() == []

    approved = call(
        "POST",
        f"/api/v1/plans/{plan['id']}/approve",
        json={"comment": "ok"},
        headers=token_headers(client, "rita"),
    ).json()
    assert approved["status"] == "applied"
    stored = call("GET", "/api/v1/namespaces/platform.ops/secrets").json()
    assert [(s["key"], s["origin"], s["version"]) for s in stored] == [
        ("API_KEY", "git:flows", 1),
        ("DB_PASSWORD", "git:flows", 1),
    ]
    # Encrypted at rest, to the server's identity.
    with engine.connect() as connection:
        ciphertext = connection.execute(
            text("SELECT ciphertext FROM secrets WHERE key = 'DB_PASSWORD'")
        ).scalar_one()
    assert DB_PASSWORD.encode() not in ciphertext
    assert load_keyring(tmp_path).decrypt(ciphertext) == DB_PASSWORD

    run = call(
        "POST", "/api/v1/executions/platform.ops/dump", params={"wait": True}, json={}
    ).json()
    assert run["state"] == "SUCCESS", run
    logs = call("GET", f"/api/v1/executions/{run['id']}/logs").json()
    assert "matched" in [line["message"] for line in logs]  # the real value reached it
    assert any("password is ******" in line["message"] for line in logs)

    # The same values again: nothing to do. One changed and one dropped: change, remove.
    commit_secrets(repo, sealed(tmp_path, {"DB_PASSWORD": DB_PASSWORD, "API_KEY": API_KEY}), "re")
    again = call("POST", "/api/v1/sources/flows/sync").json()
    assert again["status"] == "no_changes"
    assert {c["action"] for c in again["secret_changes"]} == {"unchanged"}
    commit_secrets(repo, sealed(tmp_path, {"DB_PASSWORD": DB_PASSWORD + "-2"}), "rotate")
    rotated = call("POST", "/api/v1/sources/flows/sync").json()
    # Without prune the dropped key stays stored: it is orphaned, not "removed".
    assert [(c["key"], c["action"]) for c in rotated["secret_changes"]] == [
        ("DB_PASSWORD", "change"),
    ]
    assert "secret platform.ops/API_KEY  orphaned (prune is off)" in rotated["text"]

    everything = "\n".join(call.bodies) + everything_stored(engine)
    everything += json.dumps(call("GET", "/api/v1/plans").json())
    everything += json.dumps(call("GET", "/api/v1/audit").json())
    for value in VALUES:
        assert value not in everything


def test_prune_decides_whether_dropped_keys_are_deleted(
    client: TestClient, repo: Path, tmp_path: Path
) -> None:
    commit(repo, {"flows/platform.ops/uses.yaml": uses_key("A")}, "flow")
    commit_secrets(repo, sealed(tmp_path, {"A": "1", "B": "2"}), "two keys")
    client.put("/api/v1/sources/flows", json={"url": f"file://{repo}"})
    assert client.post("/api/v1/sources/flows/sync").json()["status"] == "applied"
    commit_secrets(repo, sealed(tmp_path, {"A": "1"}), "drop B")
    kept = client.post("/api/v1/sources/flows/sync").json()
    assert [(c["key"], c["action"]) for c in kept["secret_changes"]] == [("A", "unchanged")]
    assert "secret platform.ops/B  orphaned (prune is off)" in kept["text"]
    keys = [s["key"] for s in client.get("/api/v1/namespaces/platform.ops/secrets").json()]
    assert keys == ["A", "B"]
    client.put("/api/v1/sources/flows", json={"url": f"file://{repo}", "prune": True})
    commit_secrets(repo, sealed(tmp_path, {"A": "1", "C": "3"}), "add C")
    client.post("/api/v1/sources/flows/sync")
    keys = [s["key"] for s in client.get("/api/v1/namespaces/platform.ops/secrets").json()]
    assert keys == ["A", "C"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot decrypt"),
        ({"A": 5}, "the value of 'A' is a int, not a string"),
        (["A", "B"], "must be a YAML map of secret key to string value"),
        ({"9bad": "x"}, "key '9bad' is not a valid secret key"),
    ],
)
def test_a_bad_secrets_file_fails_the_plan_naming_the_file(
    client: TestClient, repo: Path, tmp_path: Path, content: Any, expected: str
) -> None:
    commit(repo, {"flows/platform.ops/uses.yaml": uses_key("A")}, "flow")
    if content is None:  # encrypted to some other server
        other = pyrage.x25519.Identity.generate().to_public()
        data = bytes(pyrage.encrypt(b"A: x\n", [other]))
    else:  # JSON is YAML: this is what the server decrypts and reads
        recipient = load_keyring(tmp_path).identity.to_public()
        data = bytes(pyrage.encrypt(json.dumps(content).encode(), [recipient]))
    commit_secrets(repo, data, "secrets")
    client.put("/api/v1/sources/flows", json={"url": f"file://{repo}"})
    plan = client.post("/api/v1/sources/flows/sync").json()
    assert plan["status"] == "failed"
    problem = next(p for p in plan["problems"] if p["file"] == "secrets/platform.ops.age")
    assert expected in problem["message"]
    assert "secrets/platform.ops.age" in plan["text"]
    assert client.get("/api/v1/flows/platform.ops/uses").status_code == 404


def test_a_referenced_secret_must_be_in_git_or_already_stored(
    client: TestClient, repo: Path, tmp_path: Path
) -> None:
    commit(repo, {"flows/platform.ops/uses.yaml": uses_key("STORED")}, "flow")
    client.put("/api/v1/sources/flows", json={"url": f"file://{repo}"})
    missing = client.post("/api/v1/sources/flows/sync").json()
    assert missing["status"] == "failed"
    assert missing["problems"][0]["message"] == (
        "secret 'STORED' is referenced but not defined in secrets/platform.ops.age "
        "nor stored on the server"
    )
    stored = client.put(
        "/api/v1/namespaces/platform.ops/secrets/STORED", json={"value": "from-the-api"}
    )
    assert stored.status_code == 201
    commit(repo, {"README.md": "retry\n"}, "retry")
    assert client.post("/api/v1/sources/flows/sync").json()["status"] == "applied"
    # A Git source never deletes a secret it does not own, even when it prunes.
    assert client.get("/api/v1/namespaces/platform.ops/secrets/STORED").json()["origin"] == "api"


def test_flows_and_secrets_apply_together_or_not_at_all(
    client: TestClient, repo: Path, tmp_path: Path
) -> None:
    commit(repo, {"flows/platform.ops/uses.yaml": uses_key("A")}, "flow")
    commit_secrets(repo, sealed(tmp_path, {"A": "1"}), "secret")
    client.put("/api/v1/sources/flows", json={"url": f"file://{repo}", "approval": "approval"})
    plan = client.post("/api/v1/sources/flows/sync").json()
    assert plan["status"] == "pending"
    # Before the review, another source takes the flow: applying now must fail whole.
    other = tmp_path / "other-repo"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    commit(other, {"flows/platform.ops/uses.yaml": PLAIN}, "o")
    client.put("/api/v1/sources/other", json={"url": f"file://{other}"})
    assert client.post("/api/v1/sources/other/sync").json()["status"] == "applied"
    refused = client.post(
        f"/api/v1/plans/{plan['id']}/approve", json={}, headers=token_headers(client, "rita")
    )
    assert refused.status_code == 409
    assert client.get(f"/api/v1/plans/{plan['id']}").json()["status"] == "failed"
    assert client.get("/api/v1/namespaces/platform.ops/secrets").json() == []


def test_webhook_secret_is_encrypted_at_rest_and_still_checks_signatures(
    client: TestClient, engine: Engine, repo: Path, tmp_path: Path
) -> None:
    commit(repo, {"flows/platform.ops/uses.yaml": PLAIN}, "add")
    hook = "hook-Kq7-secret"
    body = {"url": f"file://{repo}", "webhook_secret": hook}
    created = client.put("/api/v1/sources/flows", json=body)
    assert created.json()["has_webhook_secret"] is True
    assert client.put("/api/v1/sources/flows", json=body).json()["version"] == 1  # no change
    with engine.connect() as connection:
        plain, sealed_secret = connection.execute(
            text("SELECT webhook_secret, webhook_secret_ciphertext FROM git_sources")
        ).one()
    assert plain is None
    assert hook.encode() not in sealed_secret
    assert load_keyring(tmp_path).decrypt(sealed_secret) == hook

    url = "/api/v1/sources/flows/webhook"
    push = b'{"ref": "refs/heads/main"}'
    headers = {"X-Hub-Signature-256": "sha256=" + signed(hook, push), "X-GitHub-Delivery": "1"}
    assert client.post(url, content=push, headers=headers).json()["status"] == "planned"
    bad = {"X-Hub-Signature-256": "sha256=" + signed("wrong", push), "X-GitHub-Delivery": "2"}
    assert client.post(url, content=push, headers=bad).status_code == 401

    # A secret stored in plaintext before the migration is sealed on first use.
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE git_sources SET webhook_secret = 'legacy-hook', "
                "webhook_secret_ciphertext = NULL"
            )
        )
    legacy = {
        "X-Hub-Signature-256": "sha256=" + signed("legacy-hook", push),
        "X-GitHub-Delivery": "3",
    }
    assert client.post(url, content=push, headers=legacy).json()["status"] == "planned"
    with engine.connect() as connection:
        plain, sealed_secret = connection.execute(
            text("SELECT webhook_secret, webhook_secret_ciphertext FROM git_sources")
        ).one()
    assert plain is None
    assert load_keyring(tmp_path).decrypt(sealed_secret) == "legacy-hook"
    assert hook not in client.get("/api/v1/sources/flows").text
    assert hook not in json.dumps(client.get("/api/v1/audit").json())
