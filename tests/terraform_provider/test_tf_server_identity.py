"""Know the server: a wrong endpoint or token is one error, and state survives it.

The provider calls ``GET /api/v1/whoami`` when Terraform configures it. These
tests run real Terraform against real servers: a mistyped path, a refused
token, and a plan applied after the endpoint moved to another server.
"""

from __future__ import annotations

import json

from test_tf_resources import flow_resource, flow_yaml
from tf_harness import ADMIN_TOKEN, TERRAFORM_HEADER, Workspace, running_server


def three_flows(workspace: Workspace, namespace: str) -> str:
    hcl = ""
    for name in ("a", "b", "c"):
        (workspace.workdir / f"{name}.yaml").write_text(flow_yaml(namespace, name))
        hcl += flow_resource(name, f"{name}.yaml")
    return hcl


def state_addresses(workspace: Workspace) -> list[str]:
    raw = json.loads((workspace.workdir / "terraform.tfstate").read_text())
    return sorted(f"{r['type']}.{r['name']}" for r in raw["resources"])


def test_a_wrong_endpoint_path_is_one_error_and_leaves_state_alone(workspace, server):
    hcl = three_flows(workspace, "tf.ident")
    workspace.write(hcl)
    workspace.apply()
    before = state_addresses(workspace)
    assert before == ["flowplane_flow.a", "flowplane_flow.b", "flowplane_flow.c"]
    state_bytes = (workspace.workdir / "terraform.tfstate").read_bytes()

    # A typo in the path: every URL under it answers 404.
    workspace.endpoint = f"{server.url}/flowplane-typo"
    workspace.write(hcl)
    for command in ("plan", "apply"):
        args = ("-auto-approve",) if command == "apply" else ()
        result = workspace.run(command, "-input=false", "-no-color", *args)
        assert result.code == 1, result.output
        assert result.output.count("Error:") == 1, result.output
        assert "/flowplane-typo is not a Flowplane server" in result.output
        assert "has been deleted" not in result.output
        assert "will be created" not in result.output
        # The failed apply left the state as it was, byte for byte.
        assert (workspace.workdir / "terraform.tfstate").read_bytes() == state_bytes
    assert state_addresses(workspace) == before
    for name in ("a", "b", "c"):
        assert server.flow("tf.ident", name) is not None

    workspace.endpoint = server.url
    workspace.write(hcl)
    assert workspace.plan().code == 0


def test_a_refused_token_is_one_error_for_the_whole_run(tmp_path, server, tf_env, reattach):
    bad = Workspace(
        tmp_path / "bad",
        {**tf_env, "TF_REATTACH_PROVIDERS": reattach},
        server.url,
        token="fpt_not-a-real-token",  # noqa: S106 - a wrong value on purpose
    )
    bad.write(three_flows(bad, "tf.badtoken"))
    result = bad.plan()
    assert result.code == 1, result.output
    assert result.output.count("Error:") == 1, result.output
    assert "Flowplane refused the API token (HTTP 401)" in result.output


def test_a_plan_made_against_another_server_is_refused(tmp_path, server, tf_env):
    # The endpoint comes from the environment, so the saved plan does not pin it:
    # exactly how a plan ends up applied against the wrong server.
    workdir = tmp_path / "moved"
    workdir.mkdir()
    (workdir / "one.yaml").write_text(flow_yaml("tf.moved", "one"))
    (workdir / "main.tf").write_text(
        TERRAFORM_HEADER + 'provider "flowplane" {}\n' + flow_resource("one", "one.yaml")
    )
    env = {**tf_env, "FLOWPLANE_TOKEN": ADMIN_TOKEN, "FLOWPLANE_ENDPOINT": server.url}
    planner = Workspace(workdir, env, server.url, token=None)
    planned = planner.run("plan", "-input=false", "-no-color", "-out=tfplan")
    assert planned.code == 0, planned.output

    (tmp_path / "other").mkdir()
    with running_server(tmp_path / "other") as other:
        applier = Workspace(workdir, {**env, "FLOWPLANE_ENDPOINT": other.url}, other.url)
        result = applier.run("apply", "-input=false", "-no-color", "tfplan")
        # For a create, Terraform's re-plan at apply sees server_id change and stops.
        assert result.code == 1, result.output
        assert "invalid new value for .server_id" in result.output
        assert other.flow("tf.moved", "one") is None
        assert server.flow("tf.moved", "one") is None
        state = workdir / "terraform.tfstate"
        if state.exists():  # Terraform may keep the address, with no instance
            assert all(not r["instances"] for r in json.loads(state.read_text())["resources"])

        # Applied on the first server, then pointed at the other: refused, not "deleted".
        planner.apply()
        assert server.flow("tf.moved", "one") is not None
        before = state.read_bytes()
        moved = applier.run("apply", "-auto-approve", "-input=false", "-no-color")
        assert moved.code == 1, moved.output
        assert moved.output.count("Error:") == 1, moved.output
        assert "the Flowplane server changed" in moved.output
        assert other.flow("tf.moved", "one") is None
        assert state.read_bytes() == before
