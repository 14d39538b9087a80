"""Write-only secrets: the value reaches the server, never state or the plan file.

``value_wo`` comes from an ephemeral variable, so Terraform keeps it out of the
saved plan too; the provider marks the attribute write-only (our tfplugin6
layer, protocol.py) and returns it null. Rotation is a bump of the version.
"""

from __future__ import annotations

import json
import zipfile

from controlplane.services.secrets import load_keyring, reveal

FIRST = "wo-First-Value-5c1d"
SECOND = "wo-Second-Value-e07a"
HCL = """
variable "db_password" {
  type      = string
  sensitive = true
  ephemeral = true
}
variable "db_password_version" {
  type = number
}
resource "flowplane_namespace_secret" "db" {
  namespace        = "tf.wo"
  key              = "DB_PASSWORD"
  value_wo         = var.db_password
  value_wo_version = var.db_password_version
}
"""


def plan_file_texts(workspace, planfile: str) -> list[bytes]:
    """The plan file's raw bytes, each member unzipped, and `terraform show -json`."""
    path = workspace.workdir / planfile
    texts = [path.read_bytes()]
    with zipfile.ZipFile(path) as archive:
        texts += [archive.read(name) for name in archive.namelist()]
    shown = workspace.run("show", "-json", planfile)
    assert shown.code == 0, shown.output
    json.loads(shown.stdout)
    texts.append(shown.stdout.encode())
    return texts


def test_value_wo_reaches_the_server_but_never_state_or_plan(workspace, server):
    keyring = load_keyring(server.data_dir)
    workspace.write(HCL)

    def plan_and_apply(value: str, version: int) -> None:
        variables = (f"-var=db_password={value}", f"-var=db_password_version={version}")
        planned = workspace.run("plan", "-input=false", "-no-color", "-out=tfplan", *variables)
        assert planned.code == 0, planned.output
        for text in plan_file_texts(workspace, "tfplan"):
            assert value.encode() not in text
        # An ephemeral variable is given again at apply; it is not in the plan.
        workspace.apply(f"-var=db_password={value}", "tfplan")

    plan_and_apply(FIRST, 1)
    assert reveal(server.engine, keyring, "tf.wo", "DB_PASSWORD") == FIRST
    raw_state = (workspace.workdir / "terraform.tfstate").read_text()
    assert FIRST not in raw_state
    state = workspace.state()["flowplane_namespace_secret.db"]
    assert state["value_wo"] is None
    assert state["value"] is None
    assert state["value_wo_version"] == 1
    version = state["version"]

    unchanged = workspace.plan(f"-var=db_password={FIRST}", "-var=db_password_version=1")
    assert unchanged.code == 0, unchanged.output

    # Rotation: a new value alone is invisible to Terraform; the version bump writes it.
    plan_and_apply(SECOND, 2)
    assert reveal(server.engine, keyring, "tf.wo", "DB_PASSWORD") == SECOND
    after = workspace.state()["flowplane_namespace_secret.db"]
    assert after["version"] == version + 1
    assert after["value_wo_version"] == 2
    raw_state = (workspace.workdir / "terraform.tfstate").read_text()
    assert FIRST not in raw_state
    assert SECOND not in raw_state


def test_value_or_value_wo_is_required(workspace):
    workspace.write(
        'resource "flowplane_namespace_secret" "db" {\n'
        '  namespace = "tf.wo"\n  key = "NONE"\n}\n'
        'resource "flowplane_namespace_secret" "both" {\n'
        '  namespace = "tf.wo"\n  key = "BOTH"\n  value = "a"\n'
        '  value_wo = "b"\n  value_wo_version = 1\n}\n'
        'resource "flowplane_namespace_secret" "unversioned" {\n'
        '  namespace = "tf.wo"\n  key = "UNVERSIONED"\n  value_wo = "b"\n}\n'
    )
    result = workspace.plan()
    assert result.code == 1
    assert "Error: Set value_wo (or value)" in result.output
    assert "Error: Set only one of value and value_wo" in result.output
    assert "Error: value_wo needs value_wo_version" in result.output
