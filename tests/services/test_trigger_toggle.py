"""trigger.Toggle switches a trigger off and on; the scheduler, webhooks and flow triggers obey.

The scheduler is driven by hand (``Scheduler.tick`` at a chosen time, as
tests/services/test_scheduler.py does), so the app's own scheduler is off here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.api import create_app
from controlplane.services.flow_triggers import fire_flow_triggers
from controlplane.services.scheduler import Scheduler
from controlplane.settings import Settings
from controlplane.store.tables import AuditEventRow, ExecutionRow, FlowRevisionRow, TriggerFireRow
from tests.conftest import ADMIN_TOKEN, bearer
from tests.services.test_engine import logs, put_flow, run

YEARLY = """\
id: nightly
namespace: demo
tasks:
  - {id: a, type: Log, message: "fired for {{ trigger.date }}"}
triggers:
  - {id: yearly, type: Schedule, cron: "0 0 1 1 *"}
"""

SWITCH = """\
id: switch
namespace: {namespace}
inputs:
  - {{id: on, type: BOOLEAN}}
tasks:
  - id: toggle
    type: io.kestra.plugin.core.trigger.Toggle
    namespace: demo
    flowId: "{{{{ inputs.flow ?? 'nightly' }}}}"
    trigger: "{{{{ inputs.trigger ?? 'yearly' }}}}"
    enabled: "{{{{ inputs.on }}}}"
"""


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    """The API with its worker, but no scheduler of its own: the tests tick it."""
    settings = Settings(
        database_url=str(engine.url),
        data_dir=tmp_path,
        poll_sources=False,
        scheduler=False,
        admin_token=ADMIN_TOKEN,
    )
    with TestClient(create_app(settings, engine=engine), headers=bearer(ADMIN_TOKEN)) as test:
        yield test


def switch(client: TestClient, *, on: bool, namespace: str = "demo", **inputs: str) -> str:
    """Run the Toggle flow; its end state."""
    source = SWITCH.format(namespace=namespace)
    for name in inputs:
        source = source.replace("tasks:", f"  - {{id: {name}, type: STRING}}\ntasks:", 1)
    put_flow(client, source)
    execution = run(client, namespace, "switch", on=on, **inputs)
    return str(execution["state"]) + "".join(f"\n{line}" for line in logs(client, execution["id"]))


def fires(engine: Engine) -> list[datetime]:
    with Session(engine) as session:
        rows = session.exec(select(TriggerFireRow.scheduled_at)).all()
    return sorted(t if t.tzinfo else t.replace(tzinfo=UTC) for t in rows)


def new_years(after: datetime, until: datetime) -> list[datetime]:
    return [
        datetime(year, 1, 1, tzinfo=UTC)
        for year in range(after.year + 1, until.year + 1)
        if after < datetime(year, 1, 1, tzinfo=UTC) <= until
    ]


def test_toggle_stops_the_scheduler_and_starts_it_again_without_catching_up(
    client: TestClient, engine: Engine
) -> None:
    put_flow(client, YEARLY)
    # Two missed New Years: the revision went live three years ago, as after downtime.
    with Session(engine) as session:
        revision = session.exec(
            select(FlowRevisionRow).where(col(FlowRevisionRow.flow_id) == "nightly")
        ).one()
        revision.created_at = datetime.now(UTC) - timedelta(days=3 * 365)
        session.add(revision)
        session.commit()
    assert switch(client, on=False).startswith("SUCCESS")
    later = datetime.now(UTC) + timedelta(days=2 * 366)
    scheduler = Scheduler(engine)
    assert scheduler.tick(datetime.now(UTC)) == 0  # the missed times are not fired...
    assert scheduler.tick(later) == 0  # ...nor the future ones
    assert fires(engine) == []

    switched_on = datetime.now(UTC)
    assert switch(client, on=True).startswith("SUCCESS")
    # As Kestra (1.2.22): what was missed while off is not recovered; what follows fires.
    assert scheduler.tick(datetime.now(UTC)) == 0
    assert scheduler.tick(later) == len(new_years(switched_on, later)) >= 2
    assert fires(engine) == new_years(switched_on, later)
    with Session(engine) as session:
        actions = session.exec(
            select(AuditEventRow.action, AuditEventRow.actor)
            .where(col(AuditEventRow.target) == "trigger:demo/nightly/yearly")
            .order_by(col(AuditEventRow.pk))
        ).all()
    assert list(actions) == [
        ("trigger.disable", "flow:demo/switch"),
        ("trigger.enable", "flow:demo/switch"),
    ]


def test_a_toggled_off_webhook_answers_404_until_it_is_on_again(client: TestClient) -> None:
    put_flow(
        client,
        "id: hooked\nnamespace: demo\ntasks:\n  - {id: a, type: Log, message: hi}\n"
        "triggers:\n  - {id: hook, type: Webhook, key: s3cr3t-key}\n",
    )
    url = "/api/v1/executions/webhook/demo/hooked/s3cr3t-key"
    assert switch(client, on=False, flow="hooked", trigger="hook").startswith("SUCCESS")
    assert client.post(url, json={}).status_code == 404
    assert switch(client, on=True, flow="hooked", trigger="hook").startswith("SUCCESS")
    assert client.post(url, json={}).status_code == 201


def test_a_toggled_off_flow_trigger_does_not_listen(client: TestClient, engine: Engine) -> None:
    put_flow(client, "id: upstream\nnamespace: demo\ntasks:\n  - {id: a, type: Log, message: up}\n")
    put_flow(
        client,
        "id: listener\nnamespace: demo\ntasks:\n  - {id: b, type: Log, message: heard}\n"
        "triggers:\n  - id: on-upstream\n    type: Flow\n    conditions:\n"
        "      - {type: ExecutionFlowCondition, namespace: demo, flowId: upstream}\n",
    )
    assert switch(client, on=False, flow="listener", trigger="on-upstream").startswith("SUCCESS")
    first = run(client, "demo", "upstream")
    with Session(engine) as session:
        ended = session.get(ExecutionRow, first["id"])
    assert ended is not None
    # The worker fires listeners just after a run ends; asked again here, directly,
    # the switched-off listener still does not start.
    assert fire_flow_triggers(engine, ended) == []
    assert switch(client, on=True, flow="listener", trigger="on-upstream").startswith("SUCCESS")
    assert len(fire_flow_triggers(engine, ended)) == 1
    # Through the worker too: the next upstream end starts the listener.
    second = run(client, "demo", "upstream")
    assert listener_started_by(engine, second["id"])


def listener_started_by(engine: Engine, upstream_id: str) -> bool:
    """Whether a listener run for ``upstream_id`` appears (the worker fires after the end)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with Session(engine) as session:
            runs = session.exec(
                select(ExecutionRow).where(col(ExecutionRow.flow_id) == "listener")
            ).all()
        if any(r.trigger.get("executionId") == upstream_id for r in runs):
            return True
        time.sleep(0.05)
    return False


def test_toggle_refuses_an_unknown_trigger_and_a_namespace_that_does_not_allow_it(
    client: TestClient, engine: Engine
) -> None:
    put_flow(client, YEARLY)
    unknown = switch(client, on=False, trigger="hourly")
    assert unknown.startswith("FAILED")
    assert "flow demo/nightly has no trigger 'hourly'" in unknown
    refused = switch(client, on=False, namespace="team.a")
    assert refused.startswith("FAILED")
    assert "namespace demo does not allow flows from team.a to toggle a trigger" in refused
    response = client.put("/api/v1/namespaces/demo", json={"allowed_namespaces": ["team.*"]})
    assert response.status_code in {200, 201}, response.text
    assert switch(client, on=False, namespace="team.a").startswith("SUCCESS")
    assert Scheduler(engine).tick(datetime.now(UTC) + timedelta(days=400)) == 0


def test_enabling_a_trigger_its_source_disables_warns_and_changes_nothing(
    client: TestClient, engine: Engine
) -> None:
    put_flow(client, YEARLY.replace('cron: "0 0 1 1 *"', 'cron: "0 0 1 1 *", disabled: true'))
    state = switch(client, on=True)
    assert state.startswith("SUCCESS")
    assert "trigger yearly of demo/nightly stays disabled: its source says disabled: true" in state
    assert Scheduler(engine).tick(datetime.now(UTC) + timedelta(days=400)) == 0
