"""The worker loop: claim an execution, keep its lease alive, run it, record the end."""

from __future__ import annotations

import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.domain.fields import State
from controlplane.domain.transitions import TERMINAL
from controlplane.logging import get_logger
from controlplane.runners.sandbox import Sandbox
from controlplane.services.flow_triggers import fire_flow_triggers
from controlplane.services.revisions import stored_spec
from controlplane.services.sealing import unseal
from controlplane.services.secrets import Keyring, load_keyring, reveal
from controlplane.services.worker.executor import (
    CancelledSignal,
    Executor,
    PausedSignal,
    StoppedSignal,
)
from controlplane.store import executions as store
from controlplane.store.db import transaction
from controlplane.store.tables import ExecutionRow, FlowRevisionRow, utcnow

log = get_logger(__name__)


@dataclass
class Worker:
    """One worker: any number may share a database.

    The lease is renewed every third of its length; a worker that dies stops
    renewing, and once the lease expires another worker claims the run.
    """

    engine: Engine
    data_dir: Path
    lease: timedelta = timedelta(seconds=15)
    poll_interval: float = 0.2
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
    sandbox: Sandbox = field(default_factory=Sandbox)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _keyring: Keyring | None = None

    def keyring(self) -> Keyring:
        """The server identity, loaded on first use (only runs that use secrets need it)."""
        if self._keyring is None:
            self._keyring = load_keyring(self.data_dir)
        return self._keyring

    def start(self) -> None:
        """Run the loop in a background thread."""
        self._thread = threading.Thread(target=self.run_forever, name=self.worker_id, daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Stop claiming new runs; the run in hand finishes first."""
        self._stop.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to stop after the current run, and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_forever(self) -> None:
        """Claim and run executions until stopped."""
        while not self._stop.is_set():
            if not self.run_once():
                self._stop.wait(self.poll_interval)

    def run_once(self) -> bool:
        """Claim one execution and run it; False when there was nothing to do."""
        with transaction(self.engine) as session:
            execution = store.claim_next(session, self.worker_id, self.lease)
        if execution is None:
            return False
        # Every log line written while running carries the run's ids.
        with structlog.contextvars.bound_contextvars(
            execution_id=execution.id, flow=f"{execution.namespace}/{execution.flow_id}"
        ):
            self._run(execution)
        return True

    def _run(self, execution: ExecutionRow) -> None:
        lost = threading.Event()
        done = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(execution.id, lost, done), daemon=True
        )
        heartbeat.start()

        def should_stop() -> bool:
            return lost.is_set() or self._killing(execution.id)

        with Session(self.engine) as session:
            revision = session.get(FlowRevisionRow, execution.revision_pk)
            assert revision is not None  # noqa: S101 - foreign key
            source = revision.source
        executor = Executor(
            engine=self.engine,
            execution=execution,
            flow=stored_spec(source),
            work_dir=self.sandbox.work_dir_for(execution.id),
            sandbox=self.sandbox,
            should_stop=should_stop,
            reveal_secret=lambda key: reveal(self.engine, self.keyring(), execution.namespace, key),
            unseal=lambda value: unseal(value, self.keyring()),
        )
        try:
            final, wake_at = executor.run(), None
        except PausedSignal as signal:
            final = State.RUNNING if signal.running else State.PAUSED
            wake_at = signal.wake_at
        except StoppedSignal:
            final, wake_at = State.KILLED, None
        except CancelledSignal:
            final, wake_at = State.CANCELLED, None
        finally:
            done.set()
            heartbeat.join()
        if lost.is_set():
            log.warning("lease_lost", execution_id=execution.id, worker=self.worker_id)
            return
        outputs = {}
        if final in {State.SUCCESS, State.WARNING}:
            try:
                outputs = executor.flow_outputs()
            except ValueError as exc:  # RenderError is a ValueError
                log.warning("flow_outputs_failed", execution_id=execution.id, error=str(exc))
                final = State.FAILED
        self._finish(execution.id, final, wake_at, outputs)

    def _finish(
        self,
        execution_id: str,
        final: State,
        wake_at: datetime | None,
        outputs: dict[str, object],
    ) -> None:
        with transaction(self.engine) as session:
            row = store.get_execution(session, execution_id, lock=True)
            if row is None or row.lease_owner != self.worker_id:
                return
            if row.state == State.KILLING.value:
                final = State.KILLED
            if final == State.RUNNING:
                store.park(session, row, wake_at or utcnow())
                return
            if final == State.PAUSED:
                row.wake_at = wake_at
                row.lease_owner = None
                row.lease_expires_at = None
            row.outputs = outputs
            store.set_state(session, row, final, f"ended on {self.worker_id}")
        log.info("execution_ended", execution_id=execution_id, state=final.value)
        if final in TERMINAL:
            fire_flow_triggers(self.engine, row)

    def _killing(self, execution_id: str) -> bool:
        with Session(self.engine) as session:
            row = store.get_execution(session, execution_id)
            return row is not None and row.state == State.KILLING.value

    def _heartbeat(self, execution_id: str, lost: threading.Event, done: threading.Event) -> None:
        interval = self.lease.total_seconds() / 3
        while not done.wait(interval):
            with transaction(self.engine) as session:
                if not store.renew_lease(session, execution_id, self.worker_id, self.lease):
                    lost.set()
                    return
