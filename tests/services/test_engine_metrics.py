"""The worker records task durations and lease takeovers into the Prometheus registry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from controlplane.metrics import REGISTRY
from controlplane.services.executions import create_execution, get_execution
from controlplane.services.flows import Provenance, put_flow
from controlplane.services.worker.worker import Worker
from controlplane.store import executions as store
from controlplane.store.db import transaction
from controlplane.store.tables import utcnow

FLOW = """\
id: measured
namespace: demo
tasks:
  - {id: ok, type: Return, format: fine}
  - {id: boom, type: Fail}
"""


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_task_attempts_are_timed_by_type_and_state(engine: Engine, tmp_path: Path) -> None:
    put_flow(engine, "demo", "measured", FLOW, Provenance())
    ok = {"type": "io.kestra.plugin.core.debug.Return", "state": "SUCCESS"}
    failed = {"type": "io.kestra.plugin.core.execution.Fail", "state": "FAILED"}
    before = (
        sample("flowplane_task_duration_seconds_count", ok),
        sample("flowplane_task_duration_seconds_count", failed),
    )
    execution = create_execution(engine, "demo", "measured", inputs={})
    assert Worker(engine=engine, data_dir=tmp_path).run_once()
    assert get_execution(engine, execution.id).execution.state == "FAILED"
    assert sample("flowplane_task_duration_seconds_count", ok) == before[0] + 1
    assert sample("flowplane_task_duration_seconds_count", failed) == before[1] + 1


def test_claiming_an_expired_lease_counts_a_takeover(engine: Engine) -> None:
    put_flow(engine, "demo", "measured", FLOW, Provenance())
    execution = create_execution(engine, "demo", "measured", inputs={})
    before = sample("flowplane_lease_takeovers_total")
    with transaction(engine) as session:
        claimed = store.claim_next(session, "first", timedelta(seconds=30))
        assert claimed is not None
        assert claimed.id == execution.id
    # A fresh claim is not a takeover; nothing else is runnable while the lease holds.
    assert sample("flowplane_lease_takeovers_total") == before
    with transaction(engine) as session:
        assert store.claim_next(session, "second", timedelta(seconds=30)) is None
        row = store.get_execution(session, execution.id, lock=True)
        assert row is not None
        row.lease_expires_at = utcnow() - timedelta(seconds=1)  # the first worker died
        session.add(row)
    with transaction(engine) as session:
        taken = store.claim_next(session, "second", timedelta(seconds=30))
        assert taken is not None
        assert taken.lease_owner == "second"
        assert taken.takeovers == 1
    assert sample("flowplane_lease_takeovers_total") == before + 1
