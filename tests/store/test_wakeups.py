"""Idle workers are woken by queued work (store/wakeups.py), not only by their poll.

The workers here poll once a minute: a run that ends within the test's
deadline was claimed because the commit that queued it woke the worker.
On PostgreSQL the wake crosses connections through LISTEN/NOTIFY.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.domain.fields import State
from controlplane.services.executions import create_execution
from controlplane.services.flows import Provenance, put_flow
from controlplane.services.worker.worker import Worker
from controlplane.store import executions as store
from controlplane.store.db import transaction
from controlplane.store.wakeups import CHANNEL, listen, wake_workers, wakeup_for

FLOW = "id: hello\nnamespace: wake\ntasks:\n  - {id: t, type: Return, format: hi}\n"
SLOW_POLL = 60.0


def _wait_for_state(engine: Engine, execution_id: str, deadline: float) -> str:
    while True:
        with Session(engine) as session:
            row = store.get_execution(session, execution_id)
            assert row is not None
            if row.state == State.SUCCESS.value or time.monotonic() > deadline:
                return row.state
        time.sleep(0.05)


def test_a_queued_run_wakes_a_worker_that_polls_once_a_minute(
    engine: Engine, tmp_path: Path
) -> None:
    put_flow(engine, "wake", "hello", FLOW, Provenance())
    worker = Worker(engine=engine, data_dir=tmp_path, poll_interval=SLOW_POLL)
    worker.start()
    try:
        time.sleep(0.3)  # the worker has looked once, found nothing, and waits
        execution = create_execution(engine, "wake", "hello", inputs={})
        state = _wait_for_state(engine, execution.id, time.monotonic() + SLOW_POLL / 2)
        assert state == State.SUCCESS.value
    finally:
        worker.stop()
    assert not worker.is_alive()


def test_a_rolled_back_transaction_wakes_nobody(engine: Engine) -> None:
    wakeup = wakeup_for(engine)
    before = wakeup.generation

    def wake_then_fail() -> None:
        with transaction(engine) as session:
            wake_workers(session)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        wake_then_fail()
    assert wakeup.generation == before
    with transaction(engine) as session:
        wake_workers(session)
    # On PostgreSQL this process's listener may hear the NOTIFY too: a second wake.
    assert wakeup.generation >= before + 1


def test_stop_wakes_a_waiting_worker_at_once(engine: Engine, tmp_path: Path) -> None:
    worker = Worker(engine=engine, data_dir=tmp_path, poll_interval=SLOW_POLL)
    worker.start()
    time.sleep(0.2)
    worker.stop(timeout=SLOW_POLL / 2)
    assert not worker.is_alive()


def test_postgres_notify_from_another_connection_wakes_this_process(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite wakes in-process (tested above)")
    listen(engine)
    wakeup = wakeup_for(engine)
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    deadline = time.monotonic() + 30
    # The listener connects in the background: notify until it has heard one.
    while True:
        seen = wakeup.generation
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
        if wakeup.wait(seen, 0.5):
            break
        assert time.monotonic() < deadline, "no notification reached the listener"
