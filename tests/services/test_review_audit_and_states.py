"""Issue 16: the anchored audit chain (truncation, rewrite) and the plan transition table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from controlplane.cli import app
from controlplane.domain.plan_states import PlanStatus, allowed_targets, check_plan_transition
from controlplane.errors import IllegalTransitionError
from controlplane.store.tables import AuditEventRow
from tests.helpers import rewrite_audit_chain


def _events(client: TestClient, count: int) -> None:
    for index in range(count):
        body = {"description": f"n{index}"}
        assert client.put(f"/api/v1/namespaces/team.n{index}", json=body).status_code in {200, 201}


def _verify_cli(engine: Engine, tmp_path: Path, *extra: str) -> tuple[int, str]:
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner(env={"FLOWPLANE_DATA_DIR": str(tmp_path)}).invoke(
        app, ["audit", "verify", "--database-url", url, *extra]
    )
    return result.exit_code, result.output


def test_a_truncated_chain_is_detected_by_its_checkpoint(
    client: TestClient, engine: Engine, tmp_path: Path
) -> None:
    _events(client, 4)
    made = client.post("/api/v1/audit/checkpoints")
    assert made.status_code == 201
    assert client.get("/api/v1/audit/verify").json()["valid"] is True
    assert _verify_cli(engine, tmp_path)[0] == 0
    exported = tmp_path / "checkpoints.json"
    exported.write_text(json.dumps(client.get("/api/v1/audit/checkpoints").json()))
    with engine.begin() as connection:
        last = connection.execute(text("SELECT max(pk) FROM audit_events")).scalar_one()
        connection.execute(text("DELETE FROM audit_events WHERE pk >= :pk"), {"pk": last - 1})
    status = client.get("/api/v1/audit/verify").json()
    assert status["valid"] is False
    assert status["reason"].startswith("truncated")
    # Even with the checkpoints table emptied too, the exported copy still catches it.
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_checkpoints"))
    code, output = _verify_cli(engine, tmp_path, "--checkpoints", str(exported))
    assert code == 1
    assert "truncated" in output


def test_a_rewritten_chain_is_detected_by_its_checkpoint(
    client: TestClient, engine: Engine
) -> None:
    _events(client, 3)
    client.post("/api/v1/audit/checkpoints")

    # Rewrite every event (mallory everywhere) and recompute every hash: the links hold.
    def edit(_index: int, row: AuditEventRow) -> None:
        row.actor = "mallory"

    rewrite_audit_chain(engine, edit)
    status = client.get("/api/v1/audit/verify").json()
    assert status["valid"] is False
    assert status["reason"].startswith("rewritten")


def test_a_forged_checkpoint_is_refused(client: TestClient, engine: Engine) -> None:
    _events(client, 2)
    client.post("/api/v1/audit/checkpoints")
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_checkpoints SET events = events + 1"))
    assert "bad signature" in client.get("/api/v1/audit/verify").json()["reason"]


def test_a_scoped_token_cannot_write_a_checkpoint(client: TestClient) -> None:
    from tests.conftest import token_headers  # noqa: PLC0415

    scoped = token_headers(client, "sa", "admin", ("team.*",))
    assert client.post("/api/v1/audit/checkpoints", headers=scoped).status_code == 403


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("pending", "approved"),
        ("pending", "rejected"),
        ("pending", "applied"),
        ("approved", "applied"),
        ("approved", "failed"),
        ("approved", "superseded"),
        ("pending", "superseded"),
    ],
)
def test_plan_transitions_the_table_allows(current: str, target: str) -> None:
    check_plan_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("applied", "approved"),
        ("rejected", "approved"),
        ("failed", "applied"),
        ("superseded", "pending"),
        ("no_changes", "applied"),
        ("approved", "rejected"),
        ("approved", "pending"),
    ],
)
def test_plan_transitions_the_table_refuses(current: str, target: str) -> None:
    with pytest.raises(IllegalTransitionError):
        check_plan_transition(current, target)


def test_no_plan_status_is_a_dead_end_while_open() -> None:
    # Every open status can still end: nothing stays approved or pending forever.
    for status in (PlanStatus.PENDING, PlanStatus.APPROVED):
        assert {PlanStatus.FAILED, PlanStatus.SUPERSEDED} <= allowed_targets(status)
