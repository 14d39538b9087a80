"""Installation routes, the shipped examples, connection errors and the committed schema.

These tests let Terraform start the provider itself (no reattach), as it does for users.
"""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tf_harness import ADMIN_TOKEN, REPO, Workspace, free_port

from controlplane.terraform_provider.mirror import build_mirror, cli_config, provider_executable
from controlplane.terraform_provider.schema_dump import SCHEMA_FILE, current_schema, render

EXAMPLES = REPO / "terraform" / "examples"


def test_examples_apply_cleanly_and_destroy(tmp_path, server, tf_env):
    workdir = tmp_path / "examples"
    shutil.copytree(EXAMPLES, workdir, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    example = Workspace(workdir, tf_env, server.url)
    hook = "example-Hook-6b2f"
    variables = (
        f"-var=flowplane_endpoint={server.url}",
        f"-var=flowplane_token={ADMIN_TOKEN}",
        f"-var=flows_repository_url=file://{tmp_path / 'flows-repo'}",
        f"-var=webhook_secret={hook}",
    )

    applied = example.apply(*variables)
    for namespace, flow_id in (
        ("platform.ops", "nightly-backup"),
        ("platform.ops", "promote-release"),
        ("platform.monitoring", "heartbeat"),
    ):
        stored = server.flow(namespace, flow_id)
        assert stored["origin"] == "terraform"
        assert stored["content"] == (EXAMPLES / f"{flow_id}.yaml").read_text()
    assert server.namespace("platform.ops")["labels"] == {"team": "ops", "tier": "critical"}
    source = server.http.get("/api/v1/sources/platform-flows").json()
    assert source["url"] == f"file://{tmp_path / 'flows-repo'}"
    assert (source["approval"], source["required_approvals"]) == ("approval", 2)
    assert (source["flows_path"], source["has_webhook_secret"]) == ("flows/", True)
    outputs = json.loads(example.run("output", "-json").stdout)
    assert outputs["backup_origin"]["value"] == "terraform"
    assert outputs["flows"]["value"]["platform.ops/nightly-backup"] == 1
    assert outputs["git_source"]["value"] == {"id": "platform-flows", "version": 1}

    again = example.plan(*variables)
    assert again.code == 0, again.output

    result = example.run("destroy", "-auto-approve", "-no-color", *variables)
    assert result.code == 0, result.output
    assert server.flow("platform.ops", "nightly-backup") is None
    assert server.namespace("platform.monitoring") is None
    if server.http.get("/api/v1/sources/platform-flows").status_code != 404:
        # A server without DELETE /api/v1/sources/{id} keeps the source, and Terraform says so.
        assert "removed from Terraform state only" in result.output
    for text in (applied.output, again.output, result.output):
        assert hook not in text
        assert ADMIN_TOKEN not in text


def test_filesystem_mirror_then_init(tmp_path, server, tf_env):
    mirror = tmp_path / "mirror"
    folder = build_mirror(mirror)
    assert (folder / "terraform-provider-flowplane_0.1.0_linux_amd64.zip").is_file()
    config = tmp_path / "mirror.rc"
    config.write_text(cli_config(mirror))
    user = Workspace(tmp_path / "ws", {**tf_env, "TF_CLI_CONFIG_FILE": str(config)}, server.url)
    (user.workdir / "m.yaml").write_text(
        "id: mirrored\nnamespace: tf.mirror\ntasks:\n"
        "  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    )
    user.write('resource "flowplane_flow" "m" {\n  content = file("m.yaml")\n}\n')

    # Without init, Terraform refuses: this is not the dev_overrides route.
    assert user.plan().code == 1

    init = user.run("init", "-no-color", "-input=false")
    assert init.code == 0, init.output
    assert "Installing flowplane/flowplane v0.1.0" in init.stdout
    lock = (user.workdir / ".terraform.lock.hcl").read_text()
    assert 'provider "registry.terraform.io/flowplane/flowplane"' in lock
    user.apply()
    assert server.flow("tf.mirror", "mirrored")["revision"] == 1
    assert user.plan().code == 0
    assert provider_executable().name == "terraform-provider-flowplane"


def test_unreachable_server_is_named_in_the_error(tmp_path, tf_env):
    endpoint = f"http://127.0.0.1:{free_port()}"
    nowhere = Workspace(tmp_path / "ws", tf_env, endpoint)
    nowhere.write('data "flowplane_namespace" "x" {\n  name = "anything"\n}\n')
    plan = nowhere.plan()
    assert plan.code == 1
    assert f"cannot reach Flowplane at {endpoint}: connection refused" in plan.stderr
    assert "Plugin error" not in plan.stderr


class _Refusing(BaseHTTPRequestHandler):
    seen: list[str | None] = []  # noqa: RUF012 - shared with the test on purpose

    def do_GET(self):
        type(self).seen.append(self.headers.get("Authorization"))
        body = json.dumps({"code": "unauthorized", "message": "invalid token"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_refused_token_is_explained(tmp_path, tf_env, refusing_server):
    # Endpoint and token come from the environment: the provider block is empty.
    env = {**tf_env, "FLOWPLANE_ENDPOINT": refusing_server, "FLOWPLANE_TOKEN": "s3cret"}
    refused = Workspace(tmp_path / "ws", env, refusing_server)
    (refused.workdir / "main.tf").write_text(
        'terraform {\n  required_providers {\n    flowplane = { source = "flowplane/flowplane" }\n'
        '  }\n}\nprovider "flowplane" {}\n'
        'data "flowplane_namespace" "x" {\n  name = "anything"\n}\n'
    )
    plan = refused.plan()
    assert plan.code == 1
    assert "Flowplane refused the API token (HTTP 401)" in plan.stderr
    assert "invalid token" in plan.stderr
    assert _Refusing.seen[-1] == "Bearer s3cret"
    assert "s3cret" not in plan.output


def test_committed_schema_matches_the_provider():
    assert SCHEMA_FILE.read_text() == render(current_schema()), (
        "provider-schema/schema.json is stale: run python -m "
        "controlplane.terraform_provider.schema_dump"
    )
