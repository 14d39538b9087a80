"""The fork-ready flows repository plans cleanly as a whole commit."""

from __future__ import annotations

from pathlib import Path

from controlplane.domain.plan import Action, DesiredFile, compute_plan

TEMPLATE = Path(__file__).resolve().parents[1] / "flows-repo-template"


def test_template_is_a_valid_commit() -> None:
    files = [
        DesiredFile(str(path.relative_to(TEMPLATE)), path.read_text(encoding="utf-8"))
        for path in sorted(TEMPLATE.rglob("*.yaml"))
    ]
    plan = compute_plan([], files)
    assert plan.valid, [p.render() for p in plan.problems]
    assert sorted((c.namespace, c.flow_id) for c in plan.changes) == [
        ("platform.monitoring", "log-analysis"),
        ("platform.ops", "backup"),
        ("platform.ops", "promote"),
    ]
    assert {c.action for c in plan.changes} == {Action.ADD}
