"""An execution row locked to change its state never blocks writes of its task runs and logs.

On PostgreSQL a task-run or log insert takes a KEY SHARE lock on its
execution (the foreign key). The worker locks the execution while it records
the run's end and waits, in Python, for the run's write-batch flush; if that
lock were FOR UPDATE, the flush's insert would wait for it, and neither side
would move (PostgreSQL cannot see a wait that passes through Python). SQLite
has no row locks: its writers are serialized by the database lock instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, insert, text
from sqlmodel import Session

from controlplane.services.executions import create_execution
from controlplane.services.flows import Provenance, put_flow
from controlplane.store import executions as store
from controlplane.store.db import transaction
from controlplane.store.tables import LogRow

FLOW = "id: locked\nnamespace: locks\ntasks:\n  - {id: t, type: Return, format: hi}\n"


def _hold_by_get(session: Session, execution_id: str) -> None:
    store.get_execution(session, execution_id, lock=True)


def _hold_by_renew(session: Session, execution_id: str) -> None:
    store.renew_lease(session, execution_id, "nobody", timedelta(seconds=30))


def _hold_by_claim(session: Session, execution_id: str) -> None:
    claimed = store.claim_next(session, "worker-1", timedelta(seconds=30))
    assert claimed is not None
    assert claimed.id == execution_id


@pytest.mark.parametrize("hold", [_hold_by_get, _hold_by_renew, _hold_by_claim])
def test_a_locked_execution_still_takes_log_lines(
    engine: Engine, hold: Callable[[Session, str], None]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serializes writers instead")
    put_flow(engine, "locks", "locked", FLOW, Provenance())
    execution = create_execution(engine, "locks", "locked", inputs={})
    with transaction(engine) as holder:
        hold(holder, execution.id)
        with engine.connect() as other:
            # Under a FOR UPDATE lock this insert waits, and fails after the timeout.
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            other.execute(
                insert(LogRow).values(execution_id=execution.id, level="INFO", message="beside")
            )
            other.commit()
    with Session(engine) as session:
        lines = store.logs_of(session, execution.id)
    assert [line.message for line in lines] == ["beside"]
