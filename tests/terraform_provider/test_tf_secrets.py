"""flowplane_namespace_secret driven by real Terraform against a live server.

The value must never appear in plan or apply output (it is sensitive) nor in
any API response (the server never returns it). Drift is detected through the
server's version. Each test uses its own key, so they share the module's server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

WRITTEN = "s3cr3t-Value-7f1c2a"
ROTATED = "rotated-Out-Of-Band-91b0"
VAR = f"-var=db_password={WRITTEN}"


def secret_hcl(key: str, description: str | None = None) -> str:
    extra = f'  description = "{description}"\n' if description is not None else ""
    return (
        'variable "db_password" {\n  type      = string\n  sensitive = true\n}\n'
        'resource "flowplane_namespace_secret" "db" {\n'
        '  namespace = "tf.sec"\n'
        f'  key       = "{key}"\n'
        "  value     = var.db_password\n"
        f"{extra}"
        "}\n"
    )


@dataclass
class Recorder:
    """Runs Terraform and the API, keeping every output and response to check for the value."""

    workspace: object
    server: object
    path: str
    texts: list[str] = field(default_factory=list)

    def plan(self) -> object:
        result = self.workspace.plan(VAR)
        self.texts.append(result.output)
        return result

    def run(self, *args: str) -> object:
        result = self.workspace.run(*args[:1], "-input=false", "-no-color", VAR, *args[1:])
        self.texts.append(result.output)
        assert result.code == 0, result.output
        return result

    def apply(self) -> object:
        return self.run("apply", "-auto-approve")

    def get(self) -> dict | None:
        response = self.server.http.get(self.path)
        self.texts.append(response.text)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def put(self, value: str, description: str | None) -> dict:
        response = self.server.http.put(
            self.path, json={"value": value, "description": description}
        )
        self.texts.append(response.text)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict:
        return self.workspace.state()["flowplane_namespace_secret.db"]

    def assert_value_never_shown(self) -> None:
        for text in self.texts:
            assert WRITTEN not in text, text
            assert ROTATED not in text, text


@pytest.fixture
def recorder(workspace, server, request) -> Recorder:
    key = request.node.name.removeprefix("test_").upper()[:40]
    workspace.write(secret_hcl(key, description="The database"))
    rec = Recorder(workspace, server, f"/api/v1/namespaces/tf.sec/secrets/{key}")
    yield rec
    rec.assert_value_never_shown()


def test_create_no_changes_and_out_of_band_rotation(recorder):
    created = recorder.plan()
    assert created.code == 2, created.output
    assert "flowplane_namespace_secret.db will be created" in created.stdout
    assert "value       = (sensitive value)" in created.stdout
    recorder.apply()

    stored = recorder.get()
    assert stored is not None
    assert (stored["origin"], stored["description"]) == ("terraform", "The database")
    state = recorder.state()
    assert state["id"] == f"tf.sec/{stored['key']}"
    assert state["version"] == stored["version"]
    # Documented limitation: without write-only attributes the value is in state.
    assert state["value"] == WRITTEN

    unchanged = recorder.plan()
    assert unchanged.code == 0, unchanged.output
    assert "No changes" in unchanged.stdout

    # Rotated through the API: the version moves on, and Terraform plans its value back.
    rotated = recorder.put(ROTATED, "The database")
    assert rotated["version"] == stored["version"] + 1
    drift = recorder.plan()
    assert drift.code == 2, drift.output
    assert "flowplane_namespace_secret.db will be updated in-place" in drift.stdout
    # The value in state became null (unknown to Terraform), so the plan adds it back.
    assert "+ value       = (sensitive value)" in drift.stdout
    assert "~ version     = 2 -> (known after apply)" in drift.stdout
    assert "0 to add, 1 to change, 0 to destroy" in drift.stdout
    recorder.apply()
    after = recorder.get()
    assert after is not None
    assert after["version"] == stored["version"] + 2
    assert recorder.state()["version"] == after["version"]
    assert recorder.plan().code == 0

    # A description change is an in-place update too.
    recorder.workspace.write(secret_hcl(stored["key"], description="Primary database"))
    described = recorder.plan()
    assert described.code == 2
    assert '~ description = "The database" -> "Primary database"' in described.stdout
    recorder.apply()
    assert recorder.get()["description"] == "Primary database"
    assert recorder.plan().code == 0


def test_import_deleted_on_server_and_destroy(recorder):
    stored = recorder.put(WRITTEN, "The database")
    key = stored["key"]
    recorder.run("import", "flowplane_namespace_secret.db", f"tf.sec/{key}")
    state = recorder.state()
    # The value cannot be read back: the next apply writes the configured one.
    assert state["value"] is None
    assert state["version"] == stored["version"]
    after_import = recorder.plan()
    assert after_import.code == 2, after_import.output
    assert "will be updated in-place" in after_import.stdout
    recorder.apply()
    # The same value again keeps the version.
    assert recorder.get()["version"] == stored["version"]
    assert recorder.plan().code == 0

    # Deleted on the server: planned for creation.
    assert recorder.server.http.delete(recorder.path).status_code == 204
    recreate = recorder.plan()
    assert "flowplane_namespace_secret.db will be created" in recreate.stdout
    recorder.apply()
    assert recorder.get() is not None

    recorder.run("destroy", "-auto-approve")
    assert recorder.get() is None
    listing = recorder.server.http.get("/api/v1/namespaces/tf.sec/secrets")
    recorder.texts.append(listing.text)
    assert key not in listing.text


def test_import_needs_namespace_and_key(workspace):
    workspace.write(secret_hcl("ANY"))
    args = ("import", "-input=false", "-no-color", "-var=db_password=x")
    bad = workspace.run(*args, "flowplane_namespace_secret.db", "no-slash")
    assert bad.code == 1
    assert "expected <namespace>/<key>" in bad.output
    missing = workspace.run(*args, "flowplane_namespace_secret.db", "tf.none/NOPE")
    assert missing.code == 1
    assert "no such secret on the server" in missing.output
