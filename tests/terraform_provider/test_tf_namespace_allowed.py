"""``allowed_namespaces`` on flowplane_namespace, through real Terraform and a live server.

The bug: the resource PUT only description, labels and variables, and a PUT
replaces every attribute, so each apply silently emptied the namespace's
allowed callers. Each test uses its own namespaces, so they share the module's
server safely.
"""

from __future__ import annotations

import json

from controlplane.terraform_provider.framework import UNKNOWN, new_diagnostics
from controlplane.terraform_provider.namespace import NamespaceResource
from controlplane.terraform_provider.provider import FlowplaneProvider
from controlplane.terraform_provider.schemas import (
    namespace_body,
    namespace_glob_problem,
    namespace_state,
)


def namespace_hcl(name: str, extra: str = "") -> str:
    return f'resource "flowplane_namespace" "ns" {{\n  name = "{name}"\n{extra}}}\n'


def test_apply_keeps_allowed_namespaces_and_drift_is_planned_back(workspace, server):
    workspace.write(
        namespace_hcl(
            "tf.allowed",
            '  description        = "Shared KV"\n  allowed_namespaces = ["team.*", "tf.caller"]\n',
        )
    )
    workspace.apply()
    assert server.namespace("tf.allowed")["allowed_namespaces"] == ["team.*", "tf.caller"]
    assert workspace.state()["flowplane_namespace.ns"]["allowed_namespaces"] == [
        "team.*",
        "tf.caller",
    ]
    assert workspace.plan().code == 0

    # Another attribute changes: the PUT must carry the list, not empty it.
    workspace.write(
        namespace_hcl(
            "tf.allowed",
            '  description        = "Shared KV, v2"\n'
            '  allowed_namespaces = ["team.*", "tf.caller"]\n',
        )
    )
    workspace.apply()
    assert server.namespace("tf.allowed")["allowed_namespaces"] == ["team.*", "tf.caller"]
    assert workspace.plan().code == 0

    # Changed on the server: the plan shows it and apply puts the configured list back.
    server.http.put(
        "/api/v1/namespaces/tf.allowed",
        json={"description": "Shared KV, v2", "allowed_namespaces": ["*"]},
    ).raise_for_status()
    drifted = workspace.plan()
    assert drifted.code == 2, drifted.output
    assert "will be updated in-place" in drifted.stdout
    assert '- "*"' in drifted.stdout
    assert '+ "team.*"' in drifted.stdout
    workspace.apply()
    assert server.namespace("tf.allowed")["allowed_namespaces"] == ["team.*", "tf.caller"]
    assert workspace.plan().code == 0


def test_omitted_allowed_namespaces_means_none(workspace, server):
    workspace.write(namespace_hcl("tf.allowed.omit", '  allowed_namespaces = ["ops"]\n'))
    workspace.apply()
    assert server.namespace("tf.allowed.omit")["allowed_namespaces"] == ["ops"]

    # Dropping the attribute empties the list: declarative, like labels.
    workspace.write(namespace_hcl("tf.allowed.omit"))
    dropped = workspace.plan()
    assert dropped.code == 2, dropped.output
    assert '- "ops"' in dropped.stdout
    workspace.apply()
    assert server.namespace("tf.allowed.omit")["allowed_namespaces"] == []
    assert workspace.plan().code == 0

    # A list set outside Terraform on an unconfigured attribute is drift too.
    server.http.put(
        "/api/v1/namespaces/tf.allowed.omit", json={"allowed_namespaces": ["ops.*"]}
    ).raise_for_status()
    drifted = workspace.plan()
    assert drifted.code == 2, drifted.output
    assert '- "ops.*"' in drifted.stdout
    workspace.apply()
    assert server.namespace("tf.allowed.omit")["allowed_namespaces"] == []
    assert workspace.plan().code == 0


def test_import_and_data_source_read_allowed_namespaces(workspace, server):
    server.http.put(
        "/api/v1/namespaces/tf.allowed.imp",
        json={"description": "by hand", "allowed_namespaces": ["data.*"]},
    ).raise_for_status()
    workspace.write(
        namespace_hcl(
            "tf.allowed.imp",
            '  description        = "by hand"\n  allowed_namespaces = ["data.*"]\n',
        )
        + 'data "flowplane_namespace" "read" {\n  name = "tf.allowed.imp"\n}\n'
        'output "allowed" { value = data.flowplane_namespace.read.allowed_namespaces }\n'
    )
    imported = workspace.run(
        "import", "-no-color", "-input=false", "flowplane_namespace.ns", "tf.allowed.imp"
    )
    assert imported.code == 0, imported.output
    assert workspace.state()["flowplane_namespace.ns"]["allowed_namespaces"] == ["data.*"]
    plan = workspace.plan()
    assert plan.code == 0, plan.output
    workspace.apply()
    outputs = json.loads(workspace.run("output", "-json").stdout)
    assert outputs["allowed"]["value"] == ["data.*"]


def test_invalid_entry_fails_the_plan_on_the_attribute(workspace, server):
    workspace.write(namespace_hcl("tf.allowed.bad", '  allowed_namespaces = ["ok.*", "Team A"]\n'))
    plan = workspace.plan()
    assert plan.code == 1, plan.output
    assert "allowed_namespaces[1] is not a namespace name or glob" in plan.stderr
    assert "'Team A'" in plan.stderr
    # The diagnostic's path makes Terraform quote the attribute's line, not the block's.
    assert 'allowed_namespaces = ["ok.*", "Team A"]' in plan.stderr
    assert server.namespace("tf.allowed.bad") is None


def test_glob_rule_matches_the_api():
    for good in ("*", "team.*", "a", "ops.*-prod", "a.b_c-d", "*.x"):
        assert namespace_glob_problem(good) is None, good
    for bad in ("", "Team", "team a", "team.?", "[ab]", ".ops", "-x", "a" * 151):
        assert namespace_glob_problem(bad) is not None, bad


def test_validate_reports_each_bad_entry_and_skips_unknowns():
    resource = NamespaceResource(FlowplaneProvider())
    diags = new_diagnostics()
    config = {"name": "x", "allowed_namespaces": ["ok", UNKNOWN, "B", "c d"]}
    resource.validate(diags, "flowplane_namespace", config)
    assert [d.path for d in diags.diagnostics] == [
        ["allowed_namespaces", (2,)],
        ["allowed_namespaces", (3,)],
    ]
    # On the wire: an attribute step, then a list index Terraform points at.
    steps = diags.to_pb()[0].attribute.steps
    assert (steps[0].attribute_name, steps[1].element_key_int) == ("allowed_namespaces", 2)
    clean = new_diagnostics()
    for value in (None, UNKNOWN, []):
        resource.validate(clean, "flowplane_namespace", {"allowed_namespaces": value})
    assert not clean.has_errors()


def test_state_and_body_carry_allowed_namespaces():
    body = {"name": "ops", "description": None, "labels": {}, "variables": {}}
    assert namespace_body({"name": "ops", "allowed_namespaces": ["a.*"]})["allowed_namespaces"] == [
        "a.*"
    ]
    # Unset in Terraform is sent as empty: a PUT replaces the list.
    assert namespace_body({"name": "ops"})["allowed_namespaces"] == []
    unset = namespace_state({**body, "allowed_namespaces": []}, {"allowed_namespaces": None})
    assert unset["allowed_namespaces"] is None
    kept = namespace_state({**body, "allowed_namespaces": []}, {"allowed_namespaces": []})
    assert kept["allowed_namespaces"] == []
    drifted = namespace_state({**body, "allowed_namespaces": ["x"]}, {"allowed_namespaces": None})
    assert drifted["allowed_namespaces"] == ["x"]
