"""flowplane_flow and flowplane_namespace driven by real Terraform against a live server.

Each test uses its own namespaces, so they share the module's server safely.
"""

from __future__ import annotations

import json
import re

from controlplane.services.flows import Provenance, put_flow


def flow_yaml(namespace: str, flow_id: str, message: str = "hello") -> str:
    return (
        f"id: {flow_id}\n"
        f"namespace: {namespace}\n"
        "tasks:\n"
        "  - id: log\n"
        "    type: io.kestra.plugin.core.log.Log\n"
        f"    message: {message}\n"
    )


def flow_resource(name: str, file: str, extra: str = "") -> str:
    return f'resource "flowplane_flow" "{name}" {{\n  content = file("{file}")\n{extra}}}\n'


def test_create_then_no_changes_then_update_in_place(workspace, server):
    (workspace.workdir / "hello.yaml").write_text(flow_yaml("tf.life", "hello"))
    workspace.write(
        'resource "flowplane_namespace" "life" {\n  name = "tf.life"\n}\n'
        + flow_resource("hello", "hello.yaml", "  depends_on = [flowplane_namespace.life]\n")
    )

    workspace.apply()
    stored = server.flow("tf.life", "hello")
    assert stored["revision"] == 1
    assert stored["origin"] == "terraform"
    assert stored["content"] == flow_yaml("tf.life", "hello")
    state = workspace.state()["flowplane_flow.hello"]
    assert state["id"] == "tf.life/hello"
    assert state["sha256"] == stored["sha256"]
    assert server.namespace("tf.life")["labels"] == {}

    # Server-side defaults (empty labels, null description) are not a diff.
    unchanged = workspace.plan()
    assert unchanged.code == 0, unchanged.output
    assert "No changes" in unchanged.stdout

    (workspace.workdir / "hello.yaml").write_text(flow_yaml("tf.life", "hello", "bonjour"))
    changed = workspace.plan()
    assert changed.code == 2, changed.output
    assert "flowplane_flow.hello will be updated in-place" in changed.stdout
    assert "0 to add, 1 to change, 0 to destroy" in changed.stdout

    workspace.apply()
    stored = server.flow("tf.life", "hello")
    assert stored["revision"] == 2
    assert "bonjour" in stored["content"]
    assert workspace.state()["flowplane_flow.hello"]["revision"] == 2
    assert workspace.plan().code == 0


def test_namespace_attributes_update_and_rename_replaces(workspace, server):
    workspace.write(
        'resource "flowplane_namespace" "team" {\n'
        '  name        = "tf.team"\n'
        '  description = "The team"\n'
        '  labels      = { owner = "ops" }\n'
        '  variables   = { region = "eu-west-1" }\n'
        "}\n"
    )
    workspace.apply()
    stored = server.namespace("tf.team")
    assert stored["description"] == "The team"
    assert stored["labels"] == {"owner": "ops"}
    assert stored["variables"] == {"region": "eu-west-1"}
    assert workspace.plan().code == 0

    # Dropping labels and variables empties them on the server, in place.
    workspace.write('resource "flowplane_namespace" "team" {\n  name = "tf.team"\n}\n')
    dropped = workspace.plan()
    assert dropped.code == 2
    assert "will be updated in-place" in dropped.stdout
    workspace.apply()
    stored = server.namespace("tf.team")
    assert (stored["labels"], stored["variables"], stored["description"]) == ({}, {}, None)
    assert workspace.plan().code == 0

    # Edited or deleted on the server: planned back.
    server.http.put("/api/v1/namespaces/tf.team", json={"labels": {"x": "y"}}).raise_for_status()
    edited = workspace.plan()
    assert edited.code == 2
    assert '- "x" = "y"' in edited.stdout
    assert server.http.delete("/api/v1/namespaces/tf.team").status_code == 204
    deleted = workspace.plan()
    assert "flowplane_namespace.team will be created" in deleted.stdout

    workspace.write('resource "flowplane_namespace" "team" {\n  name = "tf.team2"\n}\n')
    renamed = workspace.plan()
    assert "flowplane_namespace.team will be created" in renamed.stdout
    workspace.apply()
    assert server.namespace("tf.team") is None
    assert server.namespace("tf.team2") is not None

    workspace.write('resource "flowplane_namespace" "team" {\n  name = "tf.team3"\n}\n')
    renamed = workspace.plan()
    assert "flowplane_namespace.team must be replaced" in renamed.stdout
    assert re.search(r'~ name += "tf.team2" -> "tf.team3" # forces replacement', renamed.stdout)
    workspace.apply()
    assert server.namespace("tf.team2") is None
    assert server.namespace("tf.team3") is not None


def test_moving_a_flow_to_another_namespace_replaces_it(workspace, server):
    (workspace.workdir / "mover.yaml").write_text(flow_yaml("tf.from", "mover"))
    workspace.write(flow_resource("mover", "mover.yaml"))
    workspace.apply()

    # namespace is not set in the HCL: it follows the content, and forces replacement.
    (workspace.workdir / "mover.yaml").write_text(flow_yaml("tf.to", "mover"))
    plan = workspace.plan()
    assert plan.code == 2, plan.output
    assert "flowplane_flow.mover must be replaced" in plan.stdout
    assert '~ namespace   = "tf.from" -> "tf.to" # forces replacement' in plan.stdout
    workspace.apply()
    assert server.flow("tf.from", "mover") is None
    assert server.flow("tf.to", "mover")["revision"] == 1
    assert workspace.state()["flowplane_flow.mover"]["id"] == "tf.to/mover"

    # An explicit namespace must agree with the content: refused at plan time.
    workspace.write(flow_resource("mover", "mover.yaml", '  namespace = "tf.elsewhere"\n'))
    mismatch = workspace.plan()
    assert mismatch.code == 1
    assert "namespace does not match the content" in mismatch.stderr


def test_flow_deleted_on_server_is_recreated(workspace, server):
    (workspace.workdir / "gone.yaml").write_text(flow_yaml("tf.drift", "gone"))
    workspace.write(flow_resource("gone", "gone.yaml"))
    workspace.apply()
    assert server.http.delete("/api/v1/flows/tf.drift/gone").status_code == 204

    plan = workspace.plan()
    assert plan.code == 2, plan.output
    assert "flowplane_flow.gone will be created" in plan.stdout
    workspace.apply()
    assert server.flow("tf.drift", "gone")["origin"] == "terraform"


def test_flow_edited_on_server_is_planned_back_but_cosmetic_edits_are_not(workspace, server):
    original = flow_yaml("tf.drift2", "edited")
    (workspace.workdir / "edited.yaml").write_text(original)
    workspace.write(flow_resource("edited", "edited.yaml"))
    workspace.apply()

    # A comment changes the bytes but not the flow: same spec_sha256, no diff.
    before = server.flow("tf.drift2", "edited")
    cosmetic = server.put_flow("# touched by hand\n" + original, "tf.drift2", "edited")
    assert cosmetic["spec_sha256"] == before["spec_sha256"]
    assert cosmetic["revision"] == 2
    quiet = workspace.plan()
    assert quiet.code == 0, quiet.output

    server.put_flow(flow_yaml("tf.drift2", "edited", "changed by hand"), "tf.drift2", "edited")
    plan = workspace.plan()
    assert plan.code == 2, plan.output
    assert "will be updated in-place" in plan.stdout
    assert "changed by hand" in plan.stdout
    workspace.apply()
    stored = server.flow("tf.drift2", "edited")
    assert stored["content"] == original
    assert stored["origin"] == "terraform"
    assert workspace.plan().code == 0


def test_import_then_plan_shows_no_changes(workspace, server):
    server.http.put(
        "/api/v1/namespaces/tf.imported",
        json={"description": "made by hand", "labels": {"team": "data"}},
    ).raise_for_status()
    content = flow_yaml("tf.imported", "legacy")
    server.put_flow(content, "tf.imported", "legacy")
    (workspace.workdir / "legacy.yaml").write_text(content)
    workspace.write(
        'resource "flowplane_namespace" "imported" {\n'
        '  name        = "tf.imported"\n'
        '  description = "made by hand"\n'
        '  labels      = { team = "data" }\n'
        "}\n" + flow_resource("legacy", "legacy.yaml")
    )

    for address, resource_id in (
        ("flowplane_namespace.imported", "tf.imported"),
        ("flowplane_flow.legacy", "tf.imported/legacy"),
    ):
        imported = workspace.run("import", "-no-color", "-input=false", address, resource_id)
        assert imported.code == 0, imported.output
    plan = workspace.plan()
    assert plan.code == 0, plan.output
    assert workspace.state()["flowplane_flow.legacy"]["origin"] == "api"

    (workspace.workdir / "other.tf").write_text(flow_resource("other", "legacy.yaml"))
    bad = workspace.run("import", "-no-color", "flowplane_flow.other", "no-slash")
    assert bad.code == 1
    assert "expected <namespace>/<flow_id>" in bad.stderr


def test_existing_flow_is_not_adopted_without_import(workspace, server):
    server.put_flow(flow_yaml("tf.adopt", "taken"), "tf.adopt", "taken")
    (workspace.workdir / "taken.yaml").write_text(flow_yaml("tf.adopt", "taken", "mine"))
    workspace.write(flow_resource("taken", "taken.yaml"))
    result = workspace.run("apply", "-auto-approve", "-no-color")
    assert result.code == 1
    assert "already exists on the server" in result.stderr
    assert "terraform import flowplane_flow.<name> tf.adopt/taken" in result.stderr
    assert server.flow("tf.adopt", "taken")["revision"] == 1


def test_invalid_content_fails_at_plan_with_server_locations(workspace, server):
    (workspace.workdir / "bad.yaml").write_text(
        "id: bad\nnamespace: tf.invalid\ntasks:\n  - id: a\n    type: Lgo\n"
    )
    workspace.write(flow_resource("bad", "bad.yaml"))
    plan = workspace.plan()
    assert plan.code == 1
    assert "Error: Invalid flow content" in plan.stderr
    assert "<flow>:4:5: tasks[0]: unknown task type 'Lgo'" in plan.stderr
    assert server.flow("tf.invalid", "bad") is None


def test_git_owned_flow_surfaces_the_conflict(workspace, server):
    (workspace.workdir / "owned.yaml").write_text(flow_yaml("tf.git", "owned"))
    workspace.write(flow_resource("owned", "owned.yaml"))
    workspace.apply()
    # The Git reconciler takes the flow over (the API refuses git: origins from clients).
    put_flow(
        server.engine,
        "tf.git",
        "owned",
        flow_yaml("tf.git", "owned", "from git"),
        Provenance(origin="git:flows-repo"),
    )

    plan = workspace.plan()
    assert plan.code == 2
    assert "is managed by git:flows-repo" in plan.stdout + plan.stderr
    result = workspace.run("apply", "-auto-approve", "-no-color")
    assert result.code == 1
    assert "Flowplane refused the change (HTTP 409 conflict)" in result.stderr
    assert "managed by Git source 'flows-repo'" in result.stderr
    assert server.flow("tf.git", "owned")["origin"] == "git:flows-repo"


def test_heredoc_content_is_kept_byte_for_byte(workspace, server):
    content = (
        "# comments, quotes and blank lines survive\n"
        "id: exact\n"
        "namespace: tf.bytes\n"
        "\n"
        "tasks:\n"
        "  - id: say\n"
        "    type: io.kestra.plugin.core.log.Log\n"
        '    message: "it\'s {{ flow.id }}"   \n'
    )
    workspace.write(f'resource "flowplane_flow" "exact" {{\n  content = <<EOT\n{content}EOT\n}}\n')
    workspace.apply()
    assert server.flow("tf.bytes", "exact")["content"] == content
    assert workspace.plan().code == 0


def test_data_sources_and_destroy(workspace, server):
    server.http.put(
        "/api/v1/namespaces/tf.read", json={"labels": {"team": "sre"}, "variables": {"n": 3}}
    ).raise_for_status()
    (workspace.workdir / "one.yaml").write_text(flow_yaml("tf.read", "one"))
    workspace.write(
        'resource "flowplane_namespace" "read" {\n  name = "tf.read2"\n}\n'
        + flow_resource("one", "one.yaml")
        + 'data "flowplane_namespace" "read" {\n  name = "tf.read"\n}\n'
        'data "flowplane_flow" "one" {\n'
        "  namespace = flowplane_flow.one.namespace\n"
        "  flow_id   = flowplane_flow.one.flow_id\n"
        "}\n"
        'output "labels" { value = data.flowplane_namespace.read.labels }\n'
        'output "variables" { value = data.flowplane_namespace.read.variables }\n'
        'output "revision" { value = data.flowplane_flow.one.revision }\n'
        'output "content" { value = data.flowplane_flow.one.content }\n'
    )
    workspace.apply()
    outputs = json.loads(workspace.run("output", "-json").stdout)
    assert outputs["labels"]["value"] == {"team": "sre"}
    assert outputs["variables"]["value"] == {"n": "3"}
    assert outputs["revision"]["value"] == 1
    assert outputs["content"]["value"] == flow_yaml("tf.read", "one")

    workspace.destroy()
    assert server.flow("tf.read", "one") is None
    assert server.namespace("tf.read2") is None
    assert server.namespace("tf.read") is not None  # only read, never owned

    workspace.write(
        'data "flowplane_flow" "nope" {\n  namespace = "tf.read"\n  flow_id = "nope"\n}\n'
    )
    missing = workspace.plan()
    assert missing.code == 1
    assert "flow tf.read/nope does not exist" in missing.stderr


def test_content_known_only_at_apply(workspace, server):
    # terraform_data is built into Terraform: its output is unknown until it is applied.
    source = workspace.workdir / "late.yaml"
    source.write_text(flow_yaml("tf.late", "late"))
    workspace.write(
        'resource "terraform_data" "source" {\n  input = file("late.yaml")\n}\n'
        'resource "flowplane_flow" "late" {\n  content = terraform_data.source.output\n}\n'
    )
    first = workspace.apply()
    assert "flow_id     = (known after apply)" in first.stdout
    assert server.flow("tf.late", "late")["revision"] == 1

    source.write_text(flow_yaml("tf.late", "late", "later"))
    second = workspace.apply()
    assert "revision    = 1 -> (known after apply)" in second.stdout
    assert server.flow("tf.late", "late")["revision"] == 2
    assert workspace.plan().code == 0
