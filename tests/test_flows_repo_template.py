"""The fork-ready flows repository plans cleanly as a whole commit."""

from __future__ import annotations

from pathlib import Path

import yaml

from controlplane.domain.plan import Action, DesiredFile, compute_plan

TEMPLATE = Path(__file__).resolve().parents[1] / "flows-repo-template"


def _example_secrets() -> dict[str, set[str]]:
    """The keys each secrets/<namespace>.example.yaml names: a fork encrypts them into .age."""
    return {
        path.name.removesuffix(".example.yaml"): set(yaml.safe_load(path.read_text()) or {})
        for path in (TEMPLATE / "secrets").glob("*.example.yaml")
    }


def test_template_is_a_valid_commit() -> None:
    files = [
        DesiredFile(str(path.relative_to(TEMPLATE)), path.read_text(encoding="utf-8"))
        for path in sorted(TEMPLATE.rglob("*.yaml"))
    ]
    plan = compute_plan([], files, known_secrets=_example_secrets())
    assert plan.valid, [p.render() for p in plan.problems]
    assert sorted((c.namespace, c.flow_id) for c in plan.changes) == [
        ("platform.monitoring", "log-analysis"),
        ("platform.ops", "argocd-promote"),
        ("platform.ops", "backup"),
        ("platform.ops", "db-backup-s3"),
        ("platform.ops", "image-scan"),
        ("platform.ops", "promote"),
        ("platform.ops", "release-chain"),
    ]
    assert {c.action for c in plan.changes} == {Action.ADD}
