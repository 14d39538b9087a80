"""Queries on executions, task runs and logs, and the one writer of execution state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, or_, select

from controlplane.domain.fields import State
from controlplane.domain.transitions import TERMINAL, check_transition
from controlplane.metrics import LEASE_TAKEOVERS
from controlplane.store.scopes import scope_condition
from controlplane.store.tables import ExecutionRow, FlowRow, LogRow, TaskRunRow, utcnow
from controlplane.store.wakeups import wake_workers

# How an execution row is locked to change it (here, and as ``key_share=True`` in
# the claim queries): FOR NO KEY UPDATE on PostgreSQL, never FOR UPDATE. Inserting
# a task run or a log line takes a KEY SHARE lock on its execution (the foreign
# key); FOR UPDATE would make that insert wait for the lock holder, and a holder
# that waits in Python for the inserting thread (a write-batch flush) would never
# be seen as a deadlock. No key changes here.
_ROW_LOCK = {"key_share": True}


def set_state(session: Session, execution: ExecutionRow, target: State, reason: str = "") -> None:
    """Move ``execution`` to ``target`` if the transition rules allow it.

    This is the only function that writes an execution's state; it appends to
    the state history and stamps the end time of terminal states.
    """
    check_transition(State(execution.state), target)
    now = utcnow()
    execution.state = target.value
    entry: dict[str, Any] = {"state": target.value, "date": now.isoformat()}
    if reason:
        entry["reason"] = reason
    execution.state_history = [*execution.state_history, entry]
    if target in TERMINAL:
        execution.ended_at = now
        execution.lease_owner = None
        execution.lease_expires_at = None
    session.add(execution)
    if target == State.QUEUED or target in TERMINAL:
        # Queued work to claim, or an ended run that may free a concurrency slot.
        wake_workers(session)


def claim_next(session: Session, worker_id: str, lease: timedelta) -> ExecutionRow | None:
    """Claim one runnable execution for ``worker_id``, or None.

    Runnable means queued, paused past its wake time, or running under a lease
    that expired (its worker died). PostgreSQL skips rows other workers hold
    (``FOR NO KEY UPDATE SKIP LOCKED``); SQLite's BEGIN IMMEDIATE serializes claims.
    """
    now = utcnow()
    for candidate_id in _candidates(session, now):
        execution = session.get(ExecutionRow, candidate_id)
        if execution is None:  # cannot happen under the lock taken above; typed so
            continue
        if execution.state == State.QUEUED.value and _at_limit(session, execution):
            continue
        if _poisoned(session, execution):
            continue
        return _take(session, execution, worker_id, lease, now)
    return None


def first_claim(execution: ExecutionRow) -> bool:
    """Whether the claim that just took ``execution`` is its first: no worker ran it before.

    Every claim, takeover and wait appends a RUNNING entry to the history, and
    only a worker running the execution creates task runs; with one RUNNING
    entry, the execution has no task runs to replay.
    """
    running = State.RUNNING.value
    return sum(1 for entry in execution.state_history if entry.get("state") == running) == 1


# A run whose lease is taken over this many times with no task run finishing
# in between keeps killing its workers (a crash, OOM or kill in the run
# itself): it is failed instead of being handed to the next worker.
MAX_TAKEOVERS = 3


def _poisoned(session: Session, execution: ExecutionRow) -> bool:
    """Fail ``execution`` if it lost its worker MAX_TAKEOVERS times without progress."""
    if execution.state != State.RUNNING.value or execution.lease_owner is None:
        return False
    if _progressed_since_claim(session, execution):
        execution.takeovers = 0
        return False
    if execution.takeovers + 1 < MAX_TAKEOVERS:
        return False
    set_state(
        session,
        execution,
        State.FAILED,
        f"lost its worker {execution.takeovers + 1} times without progress",
    )
    session.add(
        LogRow(
            execution_id=execution.id,
            level="ERROR",
            message=(
                f"the execution lost its worker {execution.takeovers + 1} times without "
                "finishing a task; it is failed rather than handed to another worker"
            ),
        )
    )
    return True


def _progressed_since_claim(session: Session, execution: ExecutionRow) -> bool:
    """Whether a task run ended since the run's worker last claimed or took it over."""
    claimed = [
        entry["date"]
        for entry in execution.state_history
        if entry.get("state") == State.RUNNING.value
    ]
    if not claimed:
        return False
    since = datetime.fromisoformat(claimed[-1])
    statement = (
        select(func.count())
        .select_from(TaskRunRow)
        .where(
            col(TaskRunRow.execution_id) == execution.id,
            col(TaskRunRow.ended_at) >= since,
        )
    )
    return int(session.exec(statement).one()) > 0


# Candidates are read a few at a time so a flow held at its concurrency limit
# does not stop the queue behind it.
_BATCH = 20


def _candidates(session: Session, now: datetime) -> list[str]:
    """Ids of up to _BATCH runnable executions, oldest first.

    Two indexed reads of ids, not one: queued runs in creation order
    (``ix_executions_state_created``), then the few runs whose wait or lease
    ended. One OR query sorted every queued row, whole, on every claim, so a
    backlog made each claim slower than the last.
    """
    queued = (
        select(col(ExecutionRow.id), col(ExecutionRow.created_at))
        .where(col(ExecutionRow.state) == State.QUEUED.value)
        .order_by(col(ExecutionRow.created_at))
        .limit(_BATCH)
        .with_for_update(skip_locked=True, key_share=True)
    )
    due = (
        select(col(ExecutionRow.id), col(ExecutionRow.created_at))
        .where(
            or_(
                (col(ExecutionRow.state) == State.RUNNING.value)
                & (col(ExecutionRow.lease_expires_at) < now),
                (col(ExecutionRow.state) == State.PAUSED.value)
                & (col(ExecutionRow.wake_at) <= now),
                # A run with a scheduleDate waits CREATED until then.
                (col(ExecutionRow.state) == State.CREATED.value)
                & (col(ExecutionRow.wake_at) <= now),
            )
        )
        .order_by(col(ExecutionRow.created_at))
        .limit(_BATCH)
        .with_for_update(skip_locked=True, key_share=True)
    )
    rows = [*session.exec(queued).all(), *session.exec(due).all()]
    rows.sort(key=lambda row: row[1])
    return [row[0] for row in rows[:_BATCH]]


def _at_limit(session: Session, execution: ExecutionRow) -> bool:
    """Whether the flow already runs as many executions as its concurrency limit allows.

    The flow row is locked first, so two workers cannot both take the last slot.
    """
    if execution.concurrency_limit is None:
        return False
    session.exec(
        select(FlowRow)
        .where(
            col(FlowRow.namespace) == execution.namespace,
            col(FlowRow.flow_id) == execution.flow_id,
        )
        .with_for_update(key_share=True)
    ).first()
    return count_active(session, execution.namespace, execution.flow_id) >= (
        execution.concurrency_limit
    )


def count_active(session: Session, namespace: str, flow_id: str) -> int:
    """Runs of a flow that hold, or may soon hold, a worker (RUNNING or PAUSED)."""
    statement = (
        select(func.count())
        .select_from(ExecutionRow)
        .where(
            col(ExecutionRow.namespace) == namespace,
            col(ExecutionRow.flow_id) == flow_id,
            col(ExecutionRow.state).in_([State.RUNNING.value, State.PAUSED.value]),
        )
    )
    return int(session.exec(statement).one())


def _take(
    session: Session, execution: ExecutionRow, worker_id: str, lease: timedelta, now: datetime
) -> ExecutionRow:
    if execution.state == State.PAUSED.value:
        execution.wake_at = None
        set_state(session, execution, State.QUEUED, "pause elapsed")
    if execution.state == State.CREATED.value:
        execution.wake_at = None
        set_state(session, execution, State.QUEUED, "scheduled date reached")
    if execution.state == State.QUEUED.value:
        set_state(session, execution, State.RUNNING, f"claimed by {worker_id}")
    elif execution.lease_owner is None:  # parked (see ``park``): its wait is over
        execution.wake_at = None
    else:
        execution.takeovers += 1
        LEASE_TAKEOVERS.inc()
        history = {"state": State.RUNNING.value, "date": now.isoformat()}
        execution.state_history = [
            *execution.state_history,
            {**history, "reason": f"lease of {execution.lease_owner} expired; taken over"},
        ]
    execution.lease_owner = worker_id
    execution.lease_expires_at = now + lease
    session.add(execution)
    return execution


def park(session: Session, execution: ExecutionRow, wake_at: datetime) -> None:
    """Release a RUNNING execution that waits (for a subflow, a WaitFor interval) until ``wake_at``.

    It stays RUNNING, as Kestra shows it, but holds no worker: with no lease
    owner and its lease ending at ``wake_at``, the claim query picks it up
    again then, without counting a takeover.
    """
    execution.lease_owner = None
    execution.lease_expires_at = wake_at
    execution.wake_at = wake_at
    # One history entry per wait, not one per poll: a parent polling its
    # subflow every half second would otherwise add thousands an hour.
    last = execution.state_history[-1] if execution.state_history else {}
    if last.get("reason") != _WAITING:
        execution.state_history = [
            *execution.state_history,
            {"state": State.RUNNING.value, "date": utcnow().isoformat(), "reason": _WAITING},
        ]
    session.add(execution)


_WAITING = "waiting; no worker held"


def renew_lease(session: Session, execution_id: str, worker_id: str, lease: timedelta) -> bool:
    """Extend the lease; False when the worker no longer holds it."""
    execution = session.get(ExecutionRow, execution_id, with_for_update=_ROW_LOCK)
    if execution is None or execution.lease_owner != worker_id:
        return False
    execution.lease_expires_at = utcnow() + lease
    session.add(execution)
    return True


def get_execution(
    session: Session, execution_id: str, *, lock: bool = False
) -> ExecutionRow | None:
    """One execution."""
    return session.get(ExecutionRow, execution_id, with_for_update=_ROW_LOCK if lock else None)


def list_executions(
    session: Session,
    *,
    namespace: str | None,
    flow_id: str | None,
    state: str | None,
    offset: int,
    limit: int,
    scopes: Sequence[str] | None = None,
) -> Sequence[ExecutionRow]:
    """Executions, newest first, within ``scopes`` (namespace globs)."""
    statement = select(ExecutionRow)
    scoped = scope_condition(col(ExecutionRow.namespace), scopes)
    if scoped is not None:
        statement = statement.where(scoped)
    if namespace:
        statement = statement.where(col(ExecutionRow.namespace) == namespace)
    if flow_id:
        statement = statement.where(col(ExecutionRow.flow_id) == flow_id)
    if state:
        statement = statement.where(col(ExecutionRow.state) == state)
    statement = statement.order_by(col(ExecutionRow.created_at).desc()).offset(offset).limit(limit)
    return session.exec(statement).all()


def task_runs_of(session: Session, execution_id: str) -> Sequence[TaskRunRow]:
    """Every task run of an execution, in start order."""
    statement = (
        select(TaskRunRow)
        .where(col(TaskRunRow.execution_id) == execution_id)
        .order_by(col(TaskRunRow.started_at))
    )
    return session.exec(statement).all()


# Task-run states a restart runs again; SUCCESS and SKIPPED runs are kept.
_RESTARTABLE = (
    State.FAILED.value,
    State.WARNING.value,
    State.KILLED.value,
    State.CANCELLED.value,
    State.RUNNING.value,
    State.PAUSED.value,
    State.RESTARTED.value,
)


def restart_task_runs(session: Session, execution_id: str) -> list[TaskRunRow]:
    """Mark an execution's unsuccessful task runs RESTARTED, as a new attempt.

    Their outputs are cleared (a failed Subflow starts a new child) and their
    start time is reset (a Pause counts its duration again); the replay of the
    execution then runs them, and reuses every successful task run.
    """
    statement = select(TaskRunRow).where(
        col(TaskRunRow.execution_id) == execution_id,
        col(TaskRunRow.state).in_(_RESTARTABLE),
    )
    rows = list(session.exec(statement).all())
    now = utcnow()
    for row in rows:
        row.state = State.RESTARTED.value
        row.attempt += 1
        row.outputs = {}
        row.started_at = now
        row.ended_at = None
        session.add(row)
    return rows


def paused_task_run(session: Session, execution_id: str) -> TaskRunRow | None:
    """The task run an execution is paused on."""
    statement = select(TaskRunRow).where(
        col(TaskRunRow.execution_id) == execution_id,
        col(TaskRunRow.state) == State.PAUSED.value,
    )
    return session.exec(statement).first()


def logs_of(session: Session, execution_id: str, *, after: int = 0) -> Sequence[LogRow]:
    """Log lines of an execution after the given position."""
    statement = (
        select(LogRow)
        .where(col(LogRow.execution_id) == execution_id, col(LogRow.pk) > after)
        .order_by(col(LogRow.pk))
    )
    return session.exec(statement).all()
