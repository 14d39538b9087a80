"""Every mutation lands in a hash chain; editing one row by hand is detected."""

from __future__ import annotations

from sqlalchemy import Engine, text
from typer.testing import CliRunner

from controlplane.cli import app
from tests.conftest import token_headers
from tests.services.test_engine import put_flow, run

FLOW = "id: audited\nnamespace: team.a\ntasks:\n  - {id: p, type: Pause}\n"


def test_mutations_are_chained_and_tampering_is_named(client, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    client.put("/api/v1/namespaces/team.a", json={"description": "A"})
    put_flow(client, FLOW)
    client.put("/api/v1/namespaces/team.a/secrets/TOKEN", json={"value": "audit-secret-value-42"})
    paused = run(client, "team.a", "audited")
    client.post(
        f"/api/v1/executions/{paused['id']}/resume", json={}, headers=token_headers(client, "rita")
    )
    events = client.get("/api/v1/audit").json()
    actions = [e["action"] for e in events]
    # The first start records the configured admin token, then rita's token is made.
    assert actions[0] == "token.create"
    total = len(events)
    events = [e for e in events if e["action"] != "token.create"]
    actions = [e["action"] for e in events]
    assert actions[:5] == [
        "namespace.put",
        "flow.put",
        "secret.put",
        "execution.create",
        "execution.resume",
    ]
    assert events[4]["actor"] == "rita"
    assert events[0]["actor"] == "admin"
    assert (events[2]["action"], events[2]["actor"]) == ("secret.put", "admin")
    assert all(e["request_id"] for e in events), "API mutations carry their request id"
    assert "audit-secret-value-42" not in str(events)
    assert client.get("/api/v1/audit/verify").json() == {
        "valid": True,
        "events": total,
        "first_broken": None,
        "reason": "",
        "checkpoints": 0,
        "anchored_at": None,
        "problems": [],
    }
    url = str(engine.url.render_as_string(hide_password=False))
    assert CliRunner().invoke(app, ["audit", "verify", "--database-url", url]).exit_code == 0

    tampered = events[1]["position"]
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_events SET actor = 'mallory' WHERE pk = :pk"), {"pk": tampered}
        )
    status = client.get("/api/v1/audit/verify").json()
    assert status["valid"] is False
    assert status["first_broken"] == tampered
    result = CliRunner().invoke(app, ["audit", "verify", "--database-url", url])
    assert result.exit_code == 1
    assert f"broken at event {tampered}" in result.output
