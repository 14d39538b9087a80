"""flowplane_git_source and data.flowplane_execution driven by real Terraform against a live server.

Each test uses its own source ids, so they share the module's server.
"""

from __future__ import annotations

import json
import subprocess

HOOK = "hook-S3cret-5d1e"
ROTATED = "hook-Rotated-77aa"


def source_hcl(source_id: str, extra: str = "") -> str:
    return (
        'variable "hook" {\n  type      = string\n  sensitive = true\n  default   = null\n}\n'
        'resource "flowplane_git_source" "flows" {\n'
        f'  id  = "{source_id}"\n'
        '  url = "https://git.example.com/platform/flows.git"\n'
        f"{extra}"
        "}\n"
    )


def get_source(server, source_id: str) -> dict | None:
    response = server.http.get(f"/api/v1/sources/{source_id}")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def delete_out_of_band(server, source_id: str) -> None:
    """Delete the source through the API, as someone outside Terraform would."""
    response = server.http.delete(f"/api/v1/sources/{source_id}")
    assert response.status_code == 204, response.text
    assert get_source(server, source_id) is None


def test_defaults_stay_quiet_then_update_in_place(workspace, server):
    workspace.write(source_hcl("tf-life"))
    created = workspace.plan()
    assert created.code == 2, created.output
    assert "flowplane_git_source.flows will be created" in created.stdout
    assert "branch                = (known after apply)" in created.stdout
    workspace.apply()

    stored = get_source(server, "tf-life")
    assert stored is not None
    # Unset attributes took the server's defaults, and state holds them without a diff.
    assert (stored["branch"], stored["approval"], stored["prune"]) == ("main", "auto", False)
    state = workspace.state()["flowplane_git_source.flows"]
    assert state["branch"] == "main"
    assert state["poll_interval_seconds"] == stored["poll_interval_seconds"]
    assert state["has_webhook_secret"] is False
    assert state["version"] == stored["version"]
    assert state["etag"] == f'"v{stored["version"]}"'
    unchanged = workspace.plan()
    assert unchanged.code == 0, unchanged.output
    assert "No changes" in unchanged.stdout

    workspace.write(
        source_hcl(
            "tf-life",
            '  branch             = "release"\n'
            '  flows_path         = "pipelines/"\n'
            '  approval           = "approval"\n'
            "  required_approvals = 2\n"
            "  prune              = true\n"
            "  webhook_secret     = var.hook\n",
        )
    )
    hook = f"-var=hook={HOOK}"
    changed = workspace.plan(hook)
    assert changed.code == 2, changed.output
    assert "flowplane_git_source.flows will be updated in-place" in changed.stdout
    assert '~ branch                = "main" -> "release"' in changed.stdout
    assert "+ webhook_secret        = (sensitive value)" in changed.stdout
    assert "~ has_webhook_secret    = false -> true" in changed.stdout
    assert "0 to add, 1 to change, 0 to destroy" in changed.stdout
    applied = workspace.apply(hook)
    stored = get_source(server, "tf-life")
    assert (stored["branch"], stored["flows_path"], stored["approval"]) == (
        "release",
        "pipelines/",
        "approval",
    )
    assert (stored["required_approvals"], stored["prune"], stored["self_heal"]) == (2, True, False)
    assert stored["has_webhook_secret"] is True
    again = workspace.plan(hook)
    assert again.code == 0, again.output

    for text in (changed.output, applied.output):
        assert HOOK not in text


def test_webhook_secret_rotated_outside_is_written_back_and_dropping_it_clears_it(
    workspace, server
):
    hook = f"-var=hook={HOOK}"
    workspace.write(source_hcl("tf-hook", "  webhook_secret = var.hook\n"))
    created = workspace.apply(hook)
    assert workspace.state()["flowplane_git_source.flows"]["has_webhook_secret"] is True
    assert workspace.plan(hook).code == 0

    # Changed through the API (here: the secret rotated): Terraform cannot read the
    # secret, so it plans to write its own again.
    rotated = server.http.put(
        "/api/v1/sources/tf-hook",
        json={"url": "https://git.example.com/platform/flows.git", "webhook_secret": ROTATED},
    )
    rotated.raise_for_status()
    drift = workspace.plan(hook)
    assert drift.code == 2, drift.output
    assert "+ webhook_secret        = (sensitive value)" in drift.stdout
    written_back = workspace.apply(hook)
    assert workspace.plan(hook).code == 0

    # Dropping the secret from the configuration removes it on the server.
    workspace.write(source_hcl("tf-hook"))
    dropped = workspace.plan()
    assert "~ has_webhook_secret    = true -> false" in dropped.stdout
    workspace.apply()
    assert get_source(server, "tf-hook")["has_webhook_secret"] is False
    assert workspace.plan().code == 0

    for text in (created.output, drift.output, written_back.output, dropped.output):
        assert HOOK not in text
        assert ROTATED not in text
    for path in ("/api/v1/sources/tf-hook", "/api/v1/sources"):
        listing = server.http.get(path).text
        assert HOOK not in listing
        assert ROTATED not in listing


def test_import_then_no_changes_and_existing_source_is_not_adopted(workspace, server):
    server.http.put(
        "/api/v1/sources/tf-imported",
        json={
            "url": "https://git.example.com/platform/flows.git",
            "branch": "prod",
            "approval": "approval",
            "self_heal": True,
        },
    ).raise_for_status()
    workspace.write(source_hcl("tf-imported", '  branch   = "prod"\n  approval = "approval"\n'))

    refused = workspace.run("apply", "-auto-approve", "-no-color")
    assert refused.code == 1
    assert "already exists on the server" in refused.stderr
    # Terraform wraps long details: compare with the line breaks folded.
    detail = " ".join(refused.stderr.split())
    assert "terraform import flowplane_git_source.<name> tf-imported" in detail

    imported = workspace.run(
        "import", "-no-color", "-input=false", "flowplane_git_source.flows", "tf-imported"
    )
    assert imported.code == 0, imported.output
    state = workspace.state()["flowplane_git_source.flows"]
    assert (state["branch"], state["self_heal"], state["webhook_secret"]) == ("prod", True, None)
    plan = workspace.plan()
    assert plan.code == 0, plan.output

    missing = workspace.run(
        "import", "-no-color", "-input=false", "flowplane_git_source.other", "tf-nope"
    )
    assert missing.code == 1


def test_deleted_on_server_is_recreated_and_destroy(workspace, server):
    workspace.write(source_hcl("tf-gone", "  poll_interval_seconds = 300\n"))
    workspace.apply()
    assert get_source(server, "tf-gone")["poll_interval_seconds"] == 300

    delete_out_of_band(server, "tf-gone")
    plan = workspace.plan()
    assert plan.code == 2, plan.output
    assert "flowplane_git_source.flows will be created" in plan.stdout
    workspace.apply()
    assert get_source(server, "tf-gone")["poll_interval_seconds"] == 300
    assert workspace.plan().code == 0

    workspace.destroy()
    # As provider-schema/docs/resources/git_source.md says: the source is deleted.
    assert get_source(server, "tf-gone") is None
    assert "flowplane_git_source" not in (workspace.workdir / "terraform.tfstate").read_text()


def test_bad_approval_policy_fails_validation(workspace):
    workspace.write(source_hcl("tf-bad", '  approval = "sometimes"\n'))
    plan = workspace.plan()
    assert plan.code == 1
    assert "approval must be one of `auto`, `approval`" in plan.stderr


def git(repo, *args):
    env = {
        "GIT_AUTHOR_NAME": "Dana Dev",
        "GIT_AUTHOR_EMAIL": "dana@example.com",
        "GIT_COMMITTER_NAME": "Dana Dev",
        "GIT_COMMITTER_EMAIL": "dana@example.com",
        "HOME": str(repo),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return done.stdout.decode().strip()


def test_execution_data_source_reads_lineage_of_a_git_flow(workspace, server, tmp_path):
    repo = tmp_path / "flows-repo"
    (repo / "flows" / "tf.exec").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "flows" / "tf.exec" / "hello.yaml").write_text(
        "id: hello\nnamespace: tf.exec\ntasks:\n"
        "  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "Add hello")
    sha = git(repo, "rev-parse", "HEAD")

    workspace.write(
        'resource "flowplane_git_source" "repo" {\n'
        '  id  = "tf-exec"\n'
        f'  url = "file://{repo}"\n'
        "}\n"
    )
    workspace.apply()
    plan = server.http.post("/api/v1/sources/tf-exec/sync").json()
    assert plan["status"] == "applied", plan
    run = server.http.post(
        "/api/v1/executions/tf.exec/hello?wait=true", json={"labels": {"a": "b"}}
    )
    assert run.status_code == 201, run.text
    execution = run.json()
    assert execution["state"] == "SUCCESS"
    # The sync moved last_commit, which is the server's to decide: no diff.
    assert workspace.plan().code == 0

    workspace.write(
        'resource "flowplane_git_source" "repo" {\n'
        '  id  = "tf-exec"\n'
        f'  url = "file://{repo}"\n'
        "}\n"
        'data "flowplane_execution" "run" {\n'
        f'  id = "{execution["id"]}"\n'
        "}\n"
        'output "run" { value = data.flowplane_execution.run }\n'
    )
    workspace.apply()
    assert workspace.state()["flowplane_git_source.repo"]["last_commit"] == sha
    read = json.loads(workspace.run("output", "-json").stdout)["run"]["value"]
    assert read["state"] == "SUCCESS"
    assert (read["namespace"], read["flow_id"], read["flow_revision"]) == ("tf.exec", "hello", 1)
    assert read["origin"] == "git:tf-exec"
    assert read["git_commit_sha"] == sha
    assert read["plan_id"] == plan["id"]
    # The server adds Kestra's system label tying the run to its chain.
    assert read["labels"] == {"a": "b", "system.correlationId": read["id"]}
    assert read["ended_at"] is not None

    workspace.write('data "flowplane_execution" "nope" {\n  id = "no-such-run"\n}\n')
    missing = workspace.plan()
    assert missing.code == 1
    assert "execution no-such-run does not exist" in missing.stderr

    # Destroying the source leaves its flows live and released to other writers.
    workspace.write(
        'resource "flowplane_git_source" "repo" {\n'
        '  id  = "tf-exec"\n'
        f'  url = "file://{repo}"\n'
        "}\n"
    )
    workspace.destroy()
    assert get_source(server, "tf-exec") is None
    live = server.flow("tf.exec", "hello")
    assert live is not None
    assert live["origin"] == "git:tf-exec"
    content = live["content"].replace("message: hi", "message: released")
    server.put_flow(content, "tf.exec", "hello")
    assert server.flow("tf.exec", "hello")["origin"] == "api"


def test_an_update_keeps_take_over_set_outside_terraform(workspace, server):
    # PUT replaces the whole source: an attribute the provider did not send would
    # be reset to its default by every Terraform update.
    workspace.write(source_hcl("tf-take"))
    workspace.apply()
    patched = server.http.patch("/api/v1/sources/tf-take", json={"take_over": True})
    assert patched.status_code == 200, patched.text
    workspace.write(source_hcl("tf-take", '  branch = "release"\n'))
    workspace.apply()
    stored = get_source(server, "tf-take")
    assert (stored["branch"], stored["take_over"]) == ("release", True)
    assert workspace.state()["flowplane_git_source.flows"]["take_over"] is True
    assert workspace.plan().code == 0
