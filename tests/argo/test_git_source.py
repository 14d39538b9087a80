"""An Argo Workflow in a flows repository: planned with both diffs, approved, run, traced."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from controlplane.plan_preview import plan_checkout
from tests.conftest import token_headers
from tests.helpers import commit, init_repo
from tests.services.test_gitops import add_source
from tests.ui.ui_harness import new_token, sign_in

ARGO = """\
# An Argo Workflow kept in the flows repository as it is.
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: greet
spec:
  entrypoint: main
  arguments:
    parameters:
      - name: who
        value: world
  templates:
    - name: main
      steps:
        - - name: hello
            template: say
            arguments:
              parameters: [{name: text, value: "hello {{workflow.parameters.who}}"}]
        - - name: shout
            template: upper
            arguments:
              parameters: [{name: text, value: "{{steps.hello.outputs.result}}"}]
    - name: say
      inputs: {parameters: [{name: text}]}
      container: {image: busybox, command: [echo, "{{inputs.parameters.text}}"]}
    - name: upper
      inputs: {parameters: [{name: text}]}
      script:
        image: python:3.12
        command: [python]
        source: |
          print("{{inputs.parameters.text}}".upper())
"""


def _approve(client: TestClient, plan_id: str, reviewer: dict[str, str]) -> dict:
    response = client.post(f"/api/v1/plans/{plan_id}/approve", json={}, headers=reviewer)
    assert response.status_code == 200, response.text
    return response.json()


def test_argo_workflow_in_git_is_planned_approved_run_and_traced(
    client: TestClient, tmp_path: Path
) -> None:
    repo = init_repo(tmp_path)
    sha = commit(repo, {"flows/team.argo/greet.yaml": ARGO}, "Add the greet workflow")
    add_source(client, repo, approval="approval")

    plan = client.post("/api/v1/sources/flows/sync").json()
    assert plan["status"] == "pending", plan["problems"]
    (change,) = plan["changes"]
    assert (change["action"], change["namespace"], change["flow_id"]) == (
        "add",
        "team.argo",
        "greet",
    )
    # Both diffs: the Argo file as written, and the flow it converts to.
    assert change["argo_path"] == "flows/team.argo/greet.yaml"
    assert "+  entrypoint: main" in change["argo_diff"]
    assert "+type: io.kestra.plugin.scripts.shell.Commands" not in change["text_diff"]
    assert "+  type: io.kestra.plugin.scripts.shell.Commands" in change["text_diff"]
    assert "Argo source of team.argo/greet" in plan["text"]

    rita = token_headers(client, "rita")
    applied = _approve(client, plan["id"], rita)
    assert applied["status"] == "applied"

    run = client.post(
        "/api/v1/executions/team.argo/greet",
        params={"wait": True, "timeout": 60},
        json={"inputs": {"who": "gitops"}},
    ).json()
    assert run["state"] == "SUCCESS", run
    outputs = {r["task_id"]: r["outputs"] for r in run["task_runs"]}
    assert outputs["shout"]["vars"]["result"] == "HELLO GITOPS"

    lineage = client.get(f"/api/v1/executions/{run['id']}/lineage").json()
    assert lineage["git_commit"]["sha"] == sha
    assert lineage["plan"]["id"] == plan["id"]
    assert [a["actor"] for a in lineage["approvals"]] == ["rita"]
    original = lineage["revision"]["original"]
    assert original["format"] == "argo"
    assert original["path"] == "flows/team.argo/greet.yaml"
    assert original["source"] == ARGO  # byte for byte
    assert "argoproj.io" not in lineage["revision"]["source"].split("\n", 3)[3]

    # A change to the Argo file plans both diffs against the live revision.
    changed = ARGO.replace("value: world", "value: planet")
    second = commit(repo, {"flows/team.argo/greet.yaml": changed}, "Greet the planet")
    plan = client.post("/api/v1/sources/flows/sync").json()
    (change,) = plan["changes"]
    assert change["action"] == "change"
    assert "-        value: world" in change["argo_diff"]
    assert "+        value: planet" in change["argo_diff"]
    assert "+  defaults: planet" in change["text_diff"]
    _approve(client, plan["id"], rita)
    flow = client.get("/api/v1/flows/team.argo/greet").json()
    assert flow["revision"] == 2
    assert flow["git_commit"]["sha"] == second

    web = sign_in(client, new_token(client, "vic", "viewer"))
    page = web.get("/ui/flows/team.argo/greet")
    assert page.status_code == 200
    assert "flows/team.argo/greet.yaml" in page.text
    assert "argo source, converted into the flow above" in page.text
    run_page = web.get(f"/ui/executions/{run['id']}")
    assert "converted from argo source" in run_page.text
    plan_page = web.get(f"/ui/plans/{plan['id']}")
    assert "Argo source flows/team.argo/greet.yaml" in plan_page.text


def test_an_argo_file_that_cannot_convert_makes_the_plan_invalid(
    client: TestClient, tmp_path: Path
) -> None:
    repo = init_repo(tmp_path)
    daemon = ARGO.replace("    - name: say\n", "    - name: say\n      daemon: true\n")
    commit(repo, {"flows/team.argo/greet.yaml": daemon}, "A daemon")
    add_source(client, repo, approval="approval")
    plan = client.post("/api/v1/sources/flows/sync").json()
    assert plan["status"] == "failed"
    (problem,) = plan["problems"]
    assert problem["file"] == "flows/team.argo/greet.yaml"
    assert problem["path"] == "spec.templates[1].daemon"
    assert problem["line"] == 24
    assert "daemon templates are not supported" in problem["message"]


def test_a_local_plan_preview_converts_argo_files_too(client: TestClient, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "flows" / "team.argo").mkdir(parents=True)
    (checkout / "flows" / "team.argo" / "greet.yaml").write_text(ARGO)
    plan = plan_checkout(checkout, client, "flows")
    assert plan.valid, plan.problems
    assert [(c.action.value, c.namespace, c.flow_id) for c in plan.changes] == [
        ("add", "team.argo", "greet")
    ]
    (checkout / "flows" / "team.argo" / "greet.yaml").write_text(
        ARGO.replace("    - name: say\n", "    - name: say\n      daemon: true\n")
    )
    (problem,) = plan_checkout(checkout, client, "flows").problems
    assert problem.render().startswith("flows/team.argo/greet.yaml:24:7: spec.templates[1].daemon")
