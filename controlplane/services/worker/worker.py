"""The worker loop: claim an execution, keep its lease alive, run it, record the end."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from controlplane.domain.fields import State
from controlplane.domain.transitions import TERMINAL
from controlplane.errors import FlowplaneError, StoreError
from controlplane.logging import get_logger
from controlplane.runners.prestart import PrestartPool
from controlplane.runners.sandbox import Sandbox, SandboxError, default_work_root
from controlplane.services.executions import create_execution
from controlplane.services.flow_triggers import fire_flow_triggers
from controlplane.services.namespaces import ensure_namespace_allowed
from controlplane.services.revisions import stored_spec
from controlplane.services.sealing import is_sealed, seal_with, unseal
from controlplane.services.secrets import Keyring, load_keyring, reveal
from controlplane.services.worker.executor import (
    CancelledSignal,
    Executor,
    PausedSignal,
    StoppedSignal,
)
from controlplane.services.worker.retry import RetryPolicy, max_attempts
from controlplane.store import executions as store
from controlplane.store.db import transaction
from controlplane.store.tables import ExecutionRow, FlowRevisionRow, LogRow, utcnow
from controlplane.store.text import escape_nul
from controlplane.store.wakeups import listen, wakeup_for

log = get_logger(__name__)


def _attempt_of(execution: ExecutionRow) -> int:
    """Which execution attempt this is: 1, or the count carried by a retry's trigger."""
    return int(execution.trigger.get("attempt", 1)) if execution.trigger.get("retryOf") else 1


# The longest pause between two turns of a worker whose turns keep failing.
_MAX_BACKOFF = 30.0
# How often a running execution's state is read to see whether it is being killed.
KILL_CHECK_INTERVAL = 0.25
# Revision sources a worker keeps (they are immutable, and most runs share a few).
_SOURCES_KEPT = 256


@dataclass
class _Outcome:
    """How one turn of an execution ended."""

    state: State
    wake_at: datetime | None = None
    outputs: dict[str, object] = field(default_factory=dict)
    executor: Executor | None = None


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
    # time.time() of the last loop turn that finished without error (readiness).
    last_tick: float | None = None
    _failures: int = 0
    # Revision sources by pk, oldest first (``_source_of``).
    _sources: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sandbox.work_root is None:
            root = default_work_root(self.data_dir)
            self.sandbox = dataclasses.replace(self.sandbox, work_root=root)

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
        wakeup_for(self.engine).fire()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to stop after the current run, and wait for it."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        """Whether the loop thread started by ``start`` is still running."""
        return self._thread is not None and self._thread.is_alive()

    def run_forever(self) -> None:
        """Claim and run executions until stopped; no error ends the loop.

        A database error (or any bug) in one turn is logged and retried with a
        capped exponential backoff; the loop itself only ends when asked to.
        """
        with self.prestarting():
            self._loop()

    def _loop(self) -> None:
        wakeup = wakeup_for(self.engine)
        listen(self.engine)
        while not self._stop.is_set():
            seen = wakeup.generation
            try:
                worked = self.run_once()
            except Exception:
                self._failures += 1
                backoff = min(_MAX_BACKOFF, self.poll_interval * 2**self._failures)
                log.exception("worker_turn_failed", worker=self.worker_id, retry_in=backoff)
                self._stop.wait(backoff)
                continue
            self._failures = 0
            self.last_tick = time.time()
            if not worked and not self._stop.is_set():
                # Woken at once when a run is queued (store/wakeups.py); the poll
                # finds parked runs whose time came, and covers a lost notification.
                wakeup.wait(seen, self.poll_interval)

    @contextlib.contextmanager
    def prestarting(self) -> Iterator[None]:
        """While in this block, keep a sandbox started ahead of the next script task.

        Only with bwrap (``runners.prestart``), and unless the policy turns it
        off; the waiting sandbox ends with the block.
        """
        policy = self.sandbox
        if not policy.prestart or policy.pool is not None or not _uses_bwrap(policy):
            yield
            return
        pool = PrestartPool(policy)
        self.sandbox = dataclasses.replace(policy, pool=pool)
        try:
            yield
        finally:
            self.sandbox = policy
            pool.close()

    def run_once(self) -> bool:
        """Claim an execution and run it, and the next ones while there are; False when idle.

        The end of one run and the claim of the next are one transaction.
        """
        with transaction(self.engine) as session:
            execution = store.claim_next(session, self.worker_id, self.lease)
        if execution is None:
            return False
        while execution is not None:
            # Every log line written while running carries the run's ids.
            with structlog.contextvars.bound_contextvars(
                execution_id=execution.id, flow=f"{execution.namespace}/{execution.flow_id}"
            ):
                execution = self._run(execution)
            self.last_tick = time.time()
        return True

    def _run(self, execution: ExecutionRow) -> ExecutionRow | None:
        """Run ``execution`` and record its end; the next execution claimed meanwhile, if any."""
        lost = threading.Event()
        done = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(execution.id, lost, done), daemon=True
        )
        heartbeat.start()

        # The claim just read the run's state: the first check can wait an interval.
        checked = [time.monotonic()]

        def should_stop() -> bool:
            # A kill is read from the database at most every KILL_CHECK_INTERVAL:
            # a query before every task was a tenth of a short run's cost.
            if lost.is_set():
                return True
            now = time.monotonic()
            if now - checked[0] < KILL_CHECK_INTERVAL:
                return False
            checked[0] = now
            return self._killing(execution.id)

        try:
            outcome = self._execute(execution, should_stop)
        finally:
            done.set()
            heartbeat.join()
        if lost.is_set():
            log.warning("lease_lost", execution_id=execution.id, worker=self.worker_id)
            return None
        policy = None
        if outcome.state == State.FAILED:
            policy = self._retry_policy(execution, outcome.executor)
            if policy is not None:
                outcome.state = State.RETRIED  # as Kestra: this run is retried by a new one
        ended, following = self._finish(execution.id, outcome)
        if ended is not None and policy is not None:
            self._retry_execution(ended)
        return following

    def _execute(self, execution: ExecutionRow, should_stop: Callable[[], bool]) -> _Outcome:
        """Run ``execution`` inside the fault boundary: how it ended, never an exception.

        Database errors are the one exception that passes: the run is left to
        its lease, so another worker takes it over (and fails it after
        MAX_TAKEOVERS) rather than this worker ending it on a guess.
        """
        outcome = _Outcome(State.FAILED)
        try:
            outcome.executor = self._executor(execution, should_stop)
            outcome.state = outcome.executor.run()
            if outcome.state in {State.SUCCESS, State.WARNING}:
                outcome.outputs = outcome.executor.flow_outputs()
        except PausedSignal as signal:
            outcome.state = State.RUNNING if signal.running else State.PAUSED
            outcome.wake_at = signal.wake_at
        except StoppedSignal:
            outcome.state = State.KILLED
        except CancelledSignal:
            outcome.state = State.CANCELLED
        except (SQLAlchemyError, StoreError):
            log.exception("execution_store_error", execution_id=execution.id)
            raise
        except Exception as exc:  # noqa: BLE001 - the fault boundary of one execution
            log.warning("execution_failed", execution_id=execution.id, error=str(exc))
            message = f"the execution failed: {exc}"
            executor = outcome.executor
            if executor is not None:
                # Masked, after the run's queued lines, in the same commit as its end.
                executor.log(None, "ERROR", message)
            else:
                self._log_line(execution.id, message)
            outcome.state, outcome.outputs = State.FAILED, {}
        return outcome

    def _executor(self, execution: ExecutionRow, should_stop: Callable[[], bool]) -> Executor:
        """The executor of ``execution``, on exactly its pinned revision."""
        return Executor(
            engine=self.engine,
            execution=execution,
            flow=stored_spec(self._source_of(execution.revision_pk)),
            work_dir=self.sandbox.work_dir_for(execution.id),
            sandbox=self.sandbox,
            should_stop=should_stop,
            reveal_secret=lambda key: reveal(self.engine, self.keyring(), execution.namespace, key),
            unseal=lambda value: unseal(value, self.keyring()),
            seal=lambda value: seal_with(value, self.keyring().recipient),
            authorize=lambda caller, target, action: ensure_namespace_allowed(
                self.engine, caller, target, action
            ),
        )

    def _source_of(self, revision_pk: int) -> str:
        """A revision's source; a revision never changes, so it is read once per worker."""
        source = self._sources.get(revision_pk)
        if source is None:
            with Session(self.engine) as session:
                revision = session.get(FlowRevisionRow, revision_pk)
                if revision is None:
                    raise FlowplaneError(f"revision {revision_pk} of the run is missing")
                source = revision.source
            if len(self._sources) >= _SOURCES_KEPT:
                self._sources.pop(next(iter(self._sources)))
            self._sources[revision_pk] = source
        return source

    def _log_line(self, execution_id: str, message: str, level: str = "ERROR") -> None:
        """One execution-level log line (no task run), e.g. why the whole run failed."""
        with transaction(self.engine) as session:
            session.add(
                LogRow(
                    execution_id=execution_id,
                    level=level,
                    message=escape_nul(message),
                )
            )

    def _retry_policy(
        self, execution: ExecutionRow, executor: Executor | None
    ) -> RetryPolicy | None:
        """The retry that asks for a new execution of this failed run, if any remains.

        A task retry with ``behavior: CREATE_NEW_EXECUTION``, or the flow's
        ``retry`` with that behavior, retries the whole run as a new execution
        of the same revision, up to ``maxAttempts`` executions in all.
        """
        policy = executor.retry_as_new_execution if executor else None
        if policy is None and executor is not None:
            flow_policy = executor.flow.retry
            if flow_policy is not None and flow_policy.behavior == "CREATE_NEW_EXECUTION":
                policy = flow_policy
        if policy is None or _attempt_of(execution) >= max_attempts(policy):
            return None
        return policy

    def _retry_execution(self, ended: ExecutionRow) -> None:
        """Queue the new execution that retries ``ended`` (same revision, inputs and labels)."""
        attempt = _attempt_of(ended)
        try:
            retry = create_execution(
                self.engine,
                ended.namespace,
                ended.flow_id,
                inputs=unseal(ended.inputs, self.keyring()),
                labels=ended.labels,
                trigger={
                    "type": "retry",
                    "retryOf": ended.trigger.get("retryOf", ended.id),
                    "previousExecutionId": ended.id,
                    "attempt": attempt + 1,
                },
                revision=ended.flow_revision,
                sealed=[k for k, v in ended.inputs.items() if is_sealed(v)],
            )
        except FlowplaneError as exc:
            self._log_line(ended.id, f"the retry could not be created: {exc}")
            return
        self._log_line(
            ended.id, f"retried as execution {retry.id} (attempt {attempt + 1})", level="INFO"
        )

    def _finish(
        self, execution_id: str, outcome: _Outcome
    ) -> tuple[ExecutionRow | None, ExecutionRow | None]:
        """Record how the run ended, and claim the next run in the same transaction.

        Returns the ended row (None when the run is not over, or this worker
        lost it) and the execution claimed next (None when there is none, or
        the worker is stopping). The run's queued task-run and log writes
        commit in the same transaction, unless the worker lost the run.
        """
        with transaction(self.engine) as session:
            ended = self._record_end(session, execution_id, outcome)
            following = None
            if not self._stop.is_set():
                following = store.claim_next(session, self.worker_id, self.lease)
        if ended is None:
            return None, following
        log.info("execution_ended", execution_id=execution_id, state=ended.state)
        if State(ended.state) not in TERMINAL:
            return None, following
        # A broken listener never disturbs the run that ended: flow_triggers
        # contains each listener's failure, and this catches anything else.
        try:
            fire_flow_triggers(self.engine, ended)
        except Exception:
            log.exception("flow_triggers_failed", execution_id=execution_id)
        return ended, following

    def _record_end(
        self, session: Session, execution_id: str, outcome: _Outcome
    ) -> ExecutionRow | None:
        """The run's new state, in ``session``; the row, or None when lost or parked."""
        row = store.get_execution(session, execution_id, lock=True)
        if row is None or row.lease_owner != self.worker_id:
            return None
        # No executor when the run failed before one was built (nothing was queued).
        if outcome.executor is not None:
            outcome.executor.writes.write_into(session)
        final, wake_at = outcome.state, outcome.wake_at
        if row.state == State.KILLING.value:
            final = State.KILLED
        if final == State.RUNNING:
            store.park(session, row, wake_at or utcnow())
            return None
        if final == State.PAUSED:
            row.wake_at = wake_at
            row.lease_owner = None
            row.lease_expires_at = None
        row.outputs = outcome.outputs
        store.set_state(session, row, final, f"ended on {self.worker_id}")
        return row

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
            # A worker busy with one long run is alive, not stale (readiness).
            self.last_tick = time.time()


def _uses_bwrap(sandbox: Sandbox) -> bool:
    """Whether scripts run under bwrap here (a mode that cannot run them is refused per task)."""
    try:
        return sandbox.effective_mode() == "bwrap"
    except SandboxError:
        return False
