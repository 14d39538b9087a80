"""flowplane_kv and flowplane_namespace_file driven by real Terraform against a live server.

Each test uses its own namespace, so they share the module's server.
"""

from __future__ import annotations

import base64

from controlplane.services.namespace_files import read_namespace_files
from controlplane.services.sealing import seal
from controlplane.store import kv as kv_store
from controlplane.store.db import transaction

KV_HCL = """
resource "flowplane_kv" "region" {
  namespace   = "tf.kv"
  key         = "region"
  value       = "eu-west-1"
  description = "where the jobs run"
}
resource "flowplane_kv" "limits" {
  namespace = "tf.kv"
  key       = "limits"
  type      = "JSON"
  value     = jsonencode({ retries = 3, zones = ["a", "b"] })
}
"""
SCRIPT = "print('hello from a namespace file')\n"
BLOB = bytes(range(200, 256)) + b"\x00\x01"


def kv(server, namespace: str, key: str) -> dict | None:
    response = server.http.get(f"/api/v1/namespaces/{namespace}/kv/{key}")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def test_kv_create_noop_drift_import_destroy(workspace, server):
    workspace.write(KV_HCL)
    planned = workspace.plan()
    assert planned.code == 2, planned.output
    assert 'id          = "tf.kv/region"' in planned.stdout
    workspace.apply()
    assert kv(server, "tf.kv", "region")["value"] == "eu-west-1"
    assert kv(server, "tf.kv", "limits")["value"] == {"retries": 3, "zones": ["a", "b"]}
    noop = workspace.plan()
    assert noop.code == 0, noop.output

    # The same JSON spelt another way is no change; another value is drift.
    server.http.put(
        "/api/v1/namespaces/tf.kv/kv/limits",
        json={"value": {"zones": ["a", "b"], "retries": 3}},
    ).raise_for_status()
    assert workspace.plan().code == 0
    server.http.put(
        "/api/v1/namespaces/tf.kv/kv/region", json={"value": "us-east-1"}
    ).raise_for_status()
    drift = workspace.plan()
    assert drift.code == 2, drift.output
    assert '~ value       = "us-east-1" -> "eu-west-1"' in drift.stdout
    assert "1 to change" in drift.stdout
    workspace.apply()
    assert kv(server, "tf.kv", "region")["value"] == "eu-west-1"

    # A value a flow sealed reads masked: a difference, written back by apply.
    with transaction(server.engine) as session:
        sealed = seal(session, {"v": "flow-Secret-91f2"}, ["v"])["v"]
        kv_store.put_entry(session, "tf.kv", "region", sealed)
    masked = workspace.plan()
    assert masked.code == 2, masked.output
    assert '"******" -> "eu-west-1"' in masked.stdout
    assert "flow-Secret-91f2" not in masked.output
    workspace.apply()
    assert kv(server, "tf.kv", "region")["value"] == "eu-west-1"

    # Deleted on the server: planned again as a create.
    server.http.delete("/api/v1/namespaces/tf.kv/kv/limits").raise_for_status()
    gone = workspace.plan()
    assert "flowplane_kv.limits will be created" in gone.stdout
    workspace.apply()

    # Import into a fresh state, then no changes.
    workspace.run("state", "rm", "flowplane_kv.region", "flowplane_kv.limits")
    missing = workspace.run(
        "import", "-no-color", "-input=false", "flowplane_kv.region", "tf.kv/nope"
    )
    assert missing.code == 1
    assert "no such key on the server" in missing.output
    for address, key in (("flowplane_kv.region", "region"), ("flowplane_kv.limits", "limits")):
        imported = workspace.run("import", "-no-color", "-input=false", address, f"tf.kv/{key}")
        assert imported.code == 0, imported.output
    assert workspace.state()["flowplane_kv.limits"]["type"] == "JSON"
    after_import = workspace.plan()
    assert after_import.code == 0, after_import.output

    workspace.destroy()
    assert kv(server, "tf.kv", "region") is None
    assert kv(server, "tf.kv", "limits") is None


def files_hcl() -> str:
    return (
        'resource "flowplane_namespace_file" "etl" {\n'
        '  namespace = "tf.files"\n'
        '  path      = "scripts/etl.py"\n'
        '  content   = file("${path.module}/etl.py")\n'
        "}\n"
        'resource "flowplane_namespace_file" "blob" {\n'
        '  namespace      = "tf.files"\n'
        '  path           = "data/blob.bin"\n'
        '  content_base64 = filebase64("${path.module}/blob.bin")\n'
        "}\n"
    )


def test_namespace_file_create_noop_drift_import_destroy(workspace, server):
    (workspace.workdir / "etl.py").write_text(SCRIPT)
    (workspace.workdir / "blob.bin").write_bytes(BLOB)
    workspace.write(files_hcl())
    planned = workspace.plan()
    assert planned.code == 2, planned.output
    assert "2 to add" in planned.stdout
    workspace.apply()
    assert read_namespace_files(server.engine, "tf.files") == {
        "data/blob.bin": BLOB,
        "scripts/etl.py": SCRIPT.encode(),
    }
    state = workspace.state()["flowplane_namespace_file.blob"]
    assert state["size"] == len(BLOB)
    assert workspace.plan().code == 0

    # Changed on the server: the plan shows the text, apply writes ours back.
    server.http.put(
        "/api/v1/namespaces/tf.files/files/scripts/etl.py", json={"content": "print('edited')\n"}
    ).raise_for_status()
    drift = workspace.plan()
    assert drift.code == 2, drift.output
    assert "print('edited')" in drift.stdout
    workspace.apply()
    assert read_namespace_files(server.engine, "tf.files")["scripts/etl.py"] == SCRIPT.encode()

    # A local edit is a change too.
    (workspace.workdir / "etl.py").write_text(SCRIPT + "print('more')\n")
    assert workspace.plan().code == 2
    workspace.apply()
    assert workspace.plan().code == 0

    workspace.run("state", "rm", "flowplane_namespace_file.etl", "flowplane_namespace_file.blob")
    for address, path in (
        ("flowplane_namespace_file.etl", "scripts/etl.py"),
        ("flowplane_namespace_file.blob", "data/blob.bin"),
    ):
        imported = workspace.run("import", "-no-color", "-input=false", address, f"tf.files/{path}")
        assert imported.code == 0, imported.output
    assert workspace.state()["flowplane_namespace_file.blob"]["content_base64"] == (
        base64.b64encode(BLOB).decode()
    )
    assert workspace.plan().code == 0

    workspace.destroy()
    assert read_namespace_files(server.engine, "tf.files") == {}


def test_bad_paths_and_values_fail_the_plan(workspace, server):
    workspace.write(
        'resource "flowplane_namespace_file" "up" {\n'
        '  namespace = "tf.bad"\n  path = "../escape.sh"\n  content = "x"\n}\n'
        'resource "flowplane_namespace_file" "abs" {\n'
        '  namespace = "tf.bad"\n  path = "/etc/passwd"\n  content = "x"\n}\n'
        'resource "flowplane_namespace_file" "none" {\n'
        '  namespace = "tf.bad"\n  path = "a.txt"\n}\n'
        'resource "flowplane_kv" "json" {\n'
        '  namespace = "tf.bad"\n  key = "k"\n  type = "JSON"\n  value = "{not json"\n}\n'
        'resource "flowplane_kv" "key" {\n'
        '  namespace = "tf.bad"\n  key = "-k"\n  value = "v"\n}\n'
    )
    result = workspace.plan()
    assert result.code == 1, result.output
    assert result.output.count("Error: path is not valid") == 2
    assert "Error: Set content or content_base64" in result.output
    assert "Error: value is not valid JSON" in result.output
    assert "Error: key is not valid" in result.output
    assert server.http.get("/api/v1/namespaces/tf.bad/files").json() == []
