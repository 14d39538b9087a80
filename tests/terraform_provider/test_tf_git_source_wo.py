"""``webhook_secret_wo``: the Git source's webhook secret, kept out of state and plan files.

The secret comes from an ephemeral variable; the server's webhook route then
verifies a push signed with it, which proves the value reached the server.
Rotation is a bump of ``webhook_secret_wo_version``.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from test_tf_write_only import plan_file_texts

FIRST = "hook-wo-First-3b9e"
SECOND = "hook-wo-Second-c41d"
HCL = """
variable "hook" {
  type      = string
  sensitive = true
  ephemeral = true
}
variable "hook_version" {
  type = number
}
resource "flowplane_git_source" "flows" {
  id                        = "tf-hook-wo"
  url                       = "https://git.example.com/platform/flows.git"
  webhook_secret_wo         = var.hook
  webhook_secret_wo_version = var.hook_version
}
"""
# A push to a branch the source does not follow: verified, then ignored (no fetch).
PUSH = json.dumps({"ref": "refs/heads/elsewhere"}).encode()


def push_status(server, secret: str) -> int:
    """POST a GitHub-style push signed with ``secret``; the HTTP status."""
    digest = hmac.new(secret.encode(), PUSH, hashlib.sha256).hexdigest()
    response = server.http.post(
        "/api/v1/sources/tf-hook-wo/webhook",
        content=PUSH,
        headers={
            "X-Hub-Signature-256": f"sha256={digest}",
            "X-GitHub-Delivery": hashlib.sha256(secret.encode()).hexdigest(),
            "Content-Type": "application/json",
        },
    )
    if response.status_code == 200:
        assert response.json()["status"] == "ignored", response.text
    return response.status_code


def plan_and_apply(workspace, value: str, version: int) -> None:
    variables = (f"-var=hook={value}", f"-var=hook_version={version}")
    planned = workspace.run("plan", "-input=false", "-no-color", "-out=tfplan", *variables)
    assert planned.code == 0, planned.output
    for text in plan_file_texts(workspace, "tfplan"):
        assert value.encode() not in text
    # An ephemeral variable is given again at apply; it is not in the plan.
    applied = workspace.apply(f"-var=hook={value}", "tfplan")
    assert value not in applied.output


def test_webhook_secret_wo_verifies_pushes_but_never_lands_in_state(workspace, server):
    workspace.write(HCL)
    plan_and_apply(workspace, FIRST, 1)
    assert push_status(server, FIRST) == 200
    assert push_status(server, SECOND) == 401
    raw_state = (workspace.workdir / "terraform.tfstate").read_text()
    assert FIRST not in raw_state
    state = workspace.state()["flowplane_git_source.flows"]
    assert state["webhook_secret_wo"] is None
    assert state["webhook_secret"] is None
    assert state["webhook_secret_wo_version"] == 1
    assert state["has_webhook_secret"] is True

    unchanged = workspace.plan(f"-var=hook={FIRST}", "-var=hook_version=1")
    assert unchanged.code == 0, unchanged.output

    # Rotation: the version bump writes the new value; the old one stops verifying.
    plan_and_apply(workspace, SECOND, 2)
    assert push_status(server, SECOND) == 200
    assert push_status(server, FIRST) == 401
    raw_state = (workspace.workdir / "terraform.tfstate").read_text()
    assert FIRST not in raw_state
    assert SECOND not in raw_state
    assert workspace.state()["flowplane_git_source.flows"]["webhook_secret_wo_version"] == 2

    # The secret removed outside Terraform moves the source's version: the plan
    # shows it, and apply writes the configured secret back.
    removed = server.http.patch("/api/v1/sources/tf-hook-wo", json={"webhook_secret": None})
    assert removed.status_code == 200, removed.text
    assert push_status(server, SECOND) == 401
    drift = workspace.plan(f"-var=hook={SECOND}", "-var=hook_version=2")
    assert drift.code == 2, drift.output
    assert "~ has_webhook_secret        = false -> true" in drift.stdout
    workspace.apply(f"-var=hook={SECOND}", "-var=hook_version=2")
    assert push_status(server, SECOND) == 200
    assert workspace.plan(f"-var=hook={SECOND}", "-var=hook_version=2").code == 0


def test_webhook_secret_and_its_write_only_twin_exclude_each_other(workspace):
    workspace.write(
        'resource "flowplane_git_source" "both" {\n'
        '  id = "tf-both"\n  url = "https://git.example.com/a.git"\n'
        '  webhook_secret = "a"\n  webhook_secret_wo = "b"\n'
        "  webhook_secret_wo_version = 1\n}\n"
        'resource "flowplane_git_source" "unversioned" {\n'
        '  id = "tf-unversioned"\n  url = "https://git.example.com/a.git"\n'
        '  webhook_secret_wo = "b"\n}\n'
    )
    result = workspace.plan()
    assert result.code == 1
    assert "Error: Set only one of webhook_secret and webhook_secret_wo" in result.output
    assert "Error: webhook_secret_wo needs webhook_secret_wo_version" in result.output
