"""Lost updates: a change made on the server between plan and apply is refused, not overwritten.

Every update carries the ETag the provider read last (state attribute ``etag``)
as If-Match. A saved plan applied after someone else wrote the object is the
case that matters: apply does not refresh a saved plan, so without If-Match
it would silently overwrite the other write.
"""

from __future__ import annotations


def flow_yaml(message: str) -> str:
    return (
        "id: guarded\nnamespace: tf.ifmatch\ntasks:\n"
        f"  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: {message}\n"
    )


def config(description: str, branch: str) -> str:
    return (
        'resource "flowplane_namespace" "ns" {\n'
        '  name        = "tf.ifmatch"\n'
        f'  description = "{description}"\n'
        "}\n"
        # No reference to the namespace: the three updates are independent.
        'resource "flowplane_flow" "guarded" {\n'
        '  content = file("guarded.yaml")\n'
        "}\n"
        'resource "flowplane_git_source" "src" {\n'
        '  id     = "tf-ifmatch"\n'
        '  url    = "https://git.example.com/flows.git"\n'
        f'  branch = "{branch}"\n'
        "}\n"
    )


def test_saved_plan_applied_after_a_server_change_fails_and_overwrites_nothing(workspace, server):
    source = workspace.workdir / "guarded.yaml"
    source.write_text(flow_yaml("v1"))
    workspace.write(config("first", "main"))
    workspace.apply()
    state = workspace.state()
    assert (
        state["flowplane_flow.guarded"]["etag"]
        == server.http.get("/api/v1/flows/tf.ifmatch/guarded").headers["ETag"]
    )
    # Terraform creates the flow and the namespace in parallel; when the flow lands first it
    # makes the namespace implicitly and the namespace resource updates it, so compare with
    # the server rather than assume version 1.
    assert (
        state["flowplane_namespace.ns"]["etag"]
        == server.http.get("/api/v1/namespaces/tf.ifmatch").headers["ETag"]
    )

    # Terraform plans its changes and saves the plan...
    source.write_text(flow_yaml("from terraform"))
    workspace.write(config("from terraform", "terraform"))
    saved = workspace.run("plan", "-out=tfplan", "-input=false", "-no-color")
    assert saved.code == 0, saved.output
    assert "0 to add, 3 to change, 0 to destroy" in saved.stdout

    # ...someone else writes all three objects before it is applied...
    server.put_flow(flow_yaml("from someone else"), "tf.ifmatch", "guarded")
    server.http.put(
        "/api/v1/namespaces/tf.ifmatch", json={"description": "from someone else"}
    ).raise_for_status()
    server.http.put(
        "/api/v1/sources/tf-ifmatch",
        json={"url": "https://git.example.com/flows.git", "branch": "someone-else"},
    ).raise_for_status()

    # ...and the saved plan is refused for each, with a message that says what to do.
    applied = workspace.run("apply", "-no-color", "-input=false", "tfplan")
    assert applied.code == 1
    errors = " ".join(applied.stderr.split())
    for action in (
        "update flow tf.ifmatch/guarded",
        "update namespace tf.ifmatch",
        "update Git source tf-ifmatch",
    ):
        assert (
            f"{action}: the object changed on the server since Terraform last read it "
            "(HTTP 412); nothing was overwritten"
        ) in errors
    assert "run `terraform plan` (or `terraform apply -refresh-only`) again" in errors
    assert "from someone else" in server.flow("tf.ifmatch", "guarded")["content"]
    assert server.namespace("tf.ifmatch")["description"] == "from someone else"
    assert server.http.get("/api/v1/sources/tf-ifmatch").json()["branch"] == "someone-else"

    # A fresh plan reads the server's versions, shows what it will replace, and applies.
    fresh = workspace.plan()
    assert fresh.code == 2, fresh.output
    assert '~ description = "from someone else" -> "from terraform"' in fresh.stdout
    assert '~ branch                = "someone-else" -> "terraform"' in fresh.stdout
    workspace.apply()
    assert "from terraform" in server.flow("tf.ifmatch", "guarded")["content"]
    assert server.namespace("tf.ifmatch")["description"] == "from terraform"
    assert workspace.plan().code == 0


def test_two_workspaces_on_one_object_cannot_lose_an_update(workspace, server, tmp_path):
    # Two copies of the same configuration and state, as two people applying at once.
    source = workspace.workdir / "guarded.yaml"
    source.write_text(flow_yaml("v1").replace("tf.ifmatch", "tf.ifmatch2"))
    hcl = 'resource "flowplane_flow" "guarded" {\n  content = file("guarded.yaml")\n}\n'
    workspace.write(hcl)
    workspace.apply()

    other = type(workspace)(tmp_path / "other", workspace.env, workspace.endpoint)
    other.write(hcl)
    (other.workdir / "terraform.tfstate").write_text(
        (workspace.workdir / "terraform.tfstate").read_text()
    )
    source.write_text(flow_yaml("alice").replace("tf.ifmatch", "tf.ifmatch2"))
    (other.workdir / "guarded.yaml").write_text(
        flow_yaml("bob").replace("tf.ifmatch", "tf.ifmatch2")
    )
    alice = workspace.run("plan", "-out=tfplan", "-input=false", "-no-color")
    bob = other.run("plan", "-out=tfplan", "-input=false", "-no-color")
    assert (alice.code, bob.code) == (0, 0)

    assert workspace.run("apply", "-no-color", "tfplan").code == 0
    late = other.run("apply", "-no-color", "tfplan")
    assert late.code == 1
    assert "(HTTP 412); nothing was overwritten" in " ".join(late.stderr.split())
    assert "alice" in server.flow("tf.ifmatch2", "guarded")["content"]
