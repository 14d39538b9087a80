"""Flow-trigger preconditions: upstream ends gathered across executions within a time window."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.domain.conditions import window_bounds
from controlplane.services.executions import create_execution
from controlplane.services.flows import Provenance, put_flow
from controlplane.services.worker.worker import Worker
from controlplane.store.tables import ExecutionRow

LISTENER = """\
id: listener
namespace: demo
tasks:
  - {id: only, type: Return, format: "{{ trigger.flowId }}"}
triggers:
  - id: both
    type: Flow
    preconditions:
      id: both
      flows:
        - {namespace: demo, flowId: upstream-a}
        - {namespace: demo, flowId: upstream-b, states: [SUCCESS]}
      timeWindow:
        type: SLIDING_WINDOW
        window: __SPAN__
"""


def setup(engine: Engine, window: str) -> None:
    put_flow(engine, "demo", "listener", LISTENER.replace("__SPAN__", window), Provenance())
    for name in ("upstream-a", "upstream-b"):
        source = f"id: {name}\nnamespace: demo\ntasks:\n  - {{id: a, type: Log, message: hi}}\n"
        put_flow(engine, "demo", name, source, Provenance())


def finish(engine: Engine, worker: Worker, flow_id: str) -> None:
    execution = create_execution(engine, "demo", flow_id, inputs={})
    # The worker may first run a listener execution queued earlier.
    for _ in range(5):
        worker.run_once()
        with Session(engine) as session:
            row = session.get(ExecutionRow, execution.id)
            assert row is not None
            if row.state == "SUCCESS":
                return
    raise AssertionError(f"{flow_id} did not succeed")


def listener_runs(engine: Engine) -> list[ExecutionRow]:
    with Session(engine) as session:
        return list(
            session.exec(select(ExecutionRow).where(col(ExecutionRow.flow_id) == "listener")).all()
        )


def test_two_upstreams_within_the_window_fire_once(engine: Engine, tmp_path: Path) -> None:
    setup(engine, "PT1H")
    worker = Worker(engine=engine, data_dir=tmp_path)
    finish(engine, worker, "upstream-a")
    assert listener_runs(engine) == []  # one of two is not enough
    finish(engine, worker, "upstream-b")
    fired = listener_runs(engine)
    assert len(fired) == 1
    assert fired[0].trigger["flowId"] == "upstream-b"
    # The set was reset when it fired: B alone does not fire it again.
    finish(engine, worker, "upstream-b")
    assert len(listener_runs(engine)) == 1
    finish(engine, worker, "upstream-a")
    assert len(listener_runs(engine)) == 2


def test_upstreams_outside_the_window_do_not_fire(engine: Engine, tmp_path: Path) -> None:
    setup(engine, "PT0.5S")
    worker = Worker(engine=engine, data_dir=tmp_path)
    finish(engine, worker, "upstream-a")
    time.sleep(0.7)  # A's end is now older than the sliding window
    finish(engine, worker, "upstream-b")
    assert listener_runs(engine) == []


def test_multiple_condition_gathers_named_conditions(
    engine: Engine, tmp_path: Path, corpus: Path
) -> None:
    source = (corpus / "trigger-multiplecondition-listener.yaml").read_text()
    put_flow(
        engine,
        "io.kestra.tests.trigger",
        "trigger-multiplecondition-listener",
        source,
        Provenance(),
    )
    for name in ("trigger-multiplecondition-flow-a", "trigger-multiplecondition-flow-b"):
        put_flow(
            engine,
            "io.kestra.tests.trigger",
            name,
            f"id: {name}\nnamespace: io.kestra.tests.trigger\n"
            "tasks:\n  - {id: a, type: Log, message: hi}\n",
            Provenance(),
        )
    worker = Worker(engine=engine, data_dir=tmp_path)

    def fired() -> int:
        with Session(engine) as session:
            rows = session.exec(
                select(ExecutionRow).where(
                    col(ExecutionRow.flow_id) == "trigger-multiplecondition-listener"
                )
            ).all()
        return len(rows)

    for name in ("trigger-multiplecondition-flow-a", "trigger-multiplecondition-flow-b"):
        create_execution(engine, "io.kestra.tests.trigger", name, inputs={})
        assert worker.run_once()
    assert fired() == 1


def test_window_bounds() -> None:
    now = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
    assert window_bounds("DURATION_WINDOW", now) == (
        datetime(2026, 3, 4, tzinfo=UTC),
        datetime(2026, 3, 5, tzinfo=UTC),
    )
    hourly = window_bounds(
        "DURATION_WINDOW", now, window=timedelta(hours=1), advance=timedelta(minutes=15)
    )
    assert hourly == (
        datetime(2026, 3, 4, 10, 15, tzinfo=UTC),
        datetime(2026, 3, 4, 11, 15, tzinfo=UTC),
    )
    assert window_bounds("SLIDING_WINDOW", now, window=timedelta(minutes=5)) == (
        now - timedelta(minutes=5),
        now,
    )
    morning = {"start_time": dt_time(8), "end_time": dt_time(10)}
    assert window_bounds("DAILY_TIME_WINDOW", now, **morning) is None
    assert window_bounds("DAILY_TIME_WINDOW", now.replace(hour=9), **morning) is not None
    assert window_bounds("DAILY_TIME_DEADLINE", now, end_time=dt_time(9)) is None
    assert window_bounds("DAILY_TIME_DEADLINE", now, end_time=dt_time(11)) == (
        datetime(2026, 3, 4, tzinfo=UTC),
        datetime(2026, 3, 4, 11, tzinfo=UTC),
    )
