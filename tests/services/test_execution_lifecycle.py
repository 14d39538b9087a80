"""Restart, backfill and log follow, at the service level with a real worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from controlplane.errors import IllegalTransitionError, InvalidRequestError, NotFoundError
from controlplane.runners.sandbox import Sandbox
from controlplane.services.executions import (
    backfill_schedule,
    create_execution,
    get_execution,
    restart_execution,
)
from controlplane.services.flows import Provenance, put_flow
from controlplane.services.worker.worker import Worker
from controlplane.store.tables import AuditEventRow, TriggerFireRow

RESTARTABLE = """\
id: flaky
namespace: demo
tasks:
  - id: first
    type: Return
    format: "made at attempt {{ taskrun.attemptsCount }}"
  - id: check
    type: shell.Commands
    commands: ["test -f {marker}"]
  - id: last
    type: Log
    message: "{{ outputs.first.value }} on r{{ flow.revision }}"
"""


def run_to_end(engine: Engine, worker: Worker, execution_id: str) -> None:
    for _ in range(50):
        worker.run_once()
        state = get_execution(engine, execution_id).execution.state
        if state in {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"}:
            return
    pytest.fail(f"execution {execution_id} did not end")


def test_restart_reruns_failed_tasks_on_the_same_revision(engine: Engine, tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    source = RESTARTABLE.replace("{marker}", str(marker))
    put_flow(engine, "demo", "flaky", source, Provenance())
    # The marker lives on the host, which a sandboxed script cannot see.
    worker = Worker(engine=engine, data_dir=tmp_path, sandbox=Sandbox(mode="off"))
    execution = create_execution(engine, "demo", "flaky", inputs={})
    run_to_end(engine, worker, execution.id)
    failed = get_execution(engine, execution.id)
    assert failed.execution.state == "FAILED"
    before = {run.task_id: run for run in failed.task_runs}
    assert set(before) == {"first", "check"}

    # A new revision does not change what a restart runs.
    put_flow(engine, "demo", "flaky", source.replace("on r", "on revision "), Provenance())
    marker.write_text("ok")
    restarted = restart_execution(engine, execution.id, actor="alice")
    assert restarted.state == "QUEUED"
    assert restarted.state_history[-1]["reason"] == "restarted by alice"
    run_to_end(engine, worker, execution.id)

    final = get_execution(engine, execution.id)
    assert final.execution.state == "SUCCESS"
    assert final.execution.flow_revision == 1
    after = {run.task_id: run for run in final.task_runs}
    # The successful task run is kept as it was; the failed one ran again as attempt 2.
    assert after["first"].id == before["first"].id
    assert after["first"].attempt == 1
    assert after["first"].outputs == {"value": "made at attempt 1"}
    assert after["check"].id == before["check"].id
    assert after["check"].attempt == 2
    assert after["check"].state == "SUCCESS"
    assert after["last"].state == "SUCCESS"
    states = [entry["state"] for entry in final.execution.state_history]
    assert states == ["QUEUED", "RUNNING", "FAILED", "QUEUED", "RUNNING", "SUCCESS"]
    with Session(engine) as session:
        actions = session.exec(select(AuditEventRow.action)).all()
    assert "execution.restart" in actions

    with pytest.raises(IllegalTransitionError, match="already ended in SUCCESS"):
        restart_execution(engine, execution.id, actor="alice")


def test_restart_of_a_running_or_unknown_execution_is_refused(engine: Engine) -> None:
    put_flow(
        engine,
        "demo",
        "quick",
        "id: quick\nnamespace: demo\ntasks:\n  - {id: a, type: Log, message: hi}\n",
        Provenance(),
    )
    queued = create_execution(engine, "demo", "quick", inputs={})
    with pytest.raises(IllegalTransitionError, match="QUEUED"):
        restart_execution(engine, queued.id, actor="alice")
    with pytest.raises(NotFoundError):
        restart_execution(engine, "no-such-execution", actor="alice")


HOURLY = """\
id: hourly
namespace: demo
tasks:
  - {id: a, type: Log, message: "for {{ trigger.date }}"}
triggers:
  - id: every-hour
    type: Schedule
    cron: "0 * * * *"
"""


def test_backfill_creates_each_missed_fire_once(engine: Engine) -> None:
    put_flow(engine, "demo", "hourly", HOURLY, Provenance())
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=10)
    first = backfill_schedule(
        engine,
        "demo",
        "hourly",
        "every-hour",
        start=base,
        end=base + timedelta(hours=3),
        actor="alice",
    )
    # Both ends are inclusive.
    dates = [datetime.fromisoformat(e.trigger["date"]) for e in first]
    assert dates == [base + timedelta(hours=h) for h in range(4)]
    assert {e.trigger["type"] for e in first} == {"schedule"}
    assert all(e.trigger["id"] == "every-hour" and e.trigger["backfill"] for e in first)
    assert {e.state for e in first} == {"QUEUED"}

    # Repeating, or overlapping, never fires a time twice.
    assert (
        backfill_schedule(
            engine,
            "demo",
            "hourly",
            "every-hour",
            start=base,
            end=base + timedelta(hours=3),
            actor="alice",
        )
        == []
    )
    overlap = backfill_schedule(
        engine,
        "demo",
        "hourly",
        "every-hour",
        start=base + timedelta(minutes=90),
        end=base + timedelta(hours=5),
        actor="alice",
    )
    assert [datetime.fromisoformat(e.trigger["date"]) for e in overlap] == [
        base + timedelta(hours=4),
        base + timedelta(hours=5),
    ]
    with Session(engine) as session:
        fires = session.exec(select(TriggerFireRow)).all()
    assert len(fires) == 6


def test_backfill_refuses_bad_requests(engine: Engine) -> None:
    put_flow(engine, "demo", "hourly", HOURLY, Provenance())
    now = datetime.now(UTC)
    with pytest.raises(NotFoundError, match="no Schedule trigger 'nope'"):
        backfill_schedule(
            engine, "demo", "hourly", "nope", start=now - timedelta(hours=2), end=now, actor="a"
        )
    with pytest.raises(NotFoundError):
        backfill_schedule(
            engine,
            "demo",
            "missing",
            "every-hour",
            start=now - timedelta(hours=2),
            end=now,
            actor="a",
        )
    with pytest.raises(InvalidRequestError, match="future"):
        backfill_schedule(
            engine,
            "demo",
            "hourly",
            "every-hour",
            start=now,
            end=now + timedelta(hours=2),
            actor="a",
        )
    with pytest.raises(InvalidRequestError, match="before its start"):
        backfill_schedule(
            engine,
            "demo",
            "hourly",
            "every-hour",
            start=now,
            end=now - timedelta(hours=2),
            actor="a",
        )
    with pytest.raises(InvalidRequestError, match="more than 1000"):
        backfill_schedule(
            engine,
            "demo",
            "hourly",
            "every-hour",
            start=now - timedelta(days=365),
            end=now,
            actor="a",
        )


FOLLOWED = """\
id: chatty
namespace: demo
tasks:
  - {id: one, type: Log, message: first line}
  - {id: nap, type: Sleep, duration: PT0.3S}
  - {id: two, type: Log, message: second line}
  - {id: nap2, type: Sleep, duration: PT0.3S}
  - {id: three, type: Log, message: third line}
"""
