"""Creating, resuming, killing, restarting, backfilling and following executions."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from controlplane.domain import expressions
from controlplane.domain.conditions import Expression, expression_holds
from controlplane.domain.fields import InputType, State
from controlplane.domain.inputs import resolve_inputs
from controlplane.domain.spec import Flow, labels_as_dict
from controlplane.domain.tasktypes import iter_tasks
from controlplane.domain.tasktypes.flowable import Pause, Subflow
from controlplane.domain.transitions import TERMINAL
from controlplane.domain.triggers import Schedule, Webhook
from controlplane.errors import (
    ConflictError,
    IllegalTransitionError,
    InvalidInputError,
    InvalidRequestError,
    NotFoundError,
    Problem,
    StoreError,
)
from controlplane.services.revisions import stored_spec
from controlplane.services.sealing import contains_sealed, seal
from controlplane.store import executions as store
from controlplane.store import flows as flow_store
from controlplane.store import trigger_states
from controlplane.store.audit import record_event
from controlplane.store.db import transaction
from controlplane.store.tables import (
    ExecutionRow,
    FlowRevisionRow,
    LogRow,
    TaskRunRow,
    TriggerFireRow,
    utcnow,
)

CORRELATION_LABEL = "system.correlationId"
# A backfill creates at most this many executions in one call.
MAX_BACKFILL = 1000


@dataclass(frozen=True)
class ExecutionDetail:
    """An execution with its task runs."""

    execution: ExecutionRow
    task_runs: Sequence[TaskRunRow]


def create_execution(
    engine: Engine,
    namespace: str,
    flow_id: str,
    *,
    inputs: Mapping[str, Any],
    labels: Mapping[str, Any] | None = None,
    trigger: Mapping[str, Any] | None = None,
    revision: int | None = None,
    scheduled_at: datetime | None = None,
    sealed: Collection[str] = (),
) -> ExecutionRow:
    """Queue a run of the flow's active revision; lineage is copied from that revision.

    ``revision`` pins an older revision instead (a Subflow's ``revision``);
    ``scheduled_at`` keeps the run CREATED until then (its ``scheduleDate``);
    the inputs named in ``sealed`` are sealed at rest like SECRET inputs.
    """
    with transaction(engine) as session:
        return create_in_session(
            session,
            namespace,
            flow_id,
            inputs=inputs,
            labels=labels,
            trigger=trigger,
            revision=revision,
            scheduled_at=scheduled_at,
            sealed=sealed,
        )


def create_in_session(
    session: Session,
    namespace: str,
    flow_id: str,
    *,
    inputs: Mapping[str, Any],
    labels: Mapping[str, Any] | None = None,
    trigger: Mapping[str, Any] | None = None,
    revision: int | None = None,
    scheduled_at: datetime | None = None,
    sealed: Collection[str] = (),
) -> ExecutionRow:
    """``create_execution`` inside the caller's transaction (the scheduler's fire key)."""
    _flow, live = flow_store.get_live(session, namespace, flow_id)
    if live is None or live.pk is None:
        raise NotFoundError(f"flow {namespace}/{flow_id} does not exist")
    revision_row = live if revision is None else _pinned(session, live, revision)
    revision_pk = revision_row.pk
    if revision_pk is None:
        raise NotFoundError(f"flow {namespace}/{flow_id} does not exist")
    spec = stored_spec(revision_row.source)
    if spec.disabled:
        raise InvalidRequestError(f"flow {namespace}/{flow_id} is disabled")
    # SECRET inputs are sealed to the server's key before they reach the database.
    secret_names = [i.id for i in spec.inputs or [] if i.type == InputType.SECRET]
    secret_names += [name for name in sealed if name not in secret_names]
    given = resolve_inputs(spec.inputs or [], inputs)
    _refuse_sealed_shapes(given, "inputs")
    resolved = seal(session, given, secret_names)
    execution_id = str(uuid.uuid4())
    merged = {**(spec.labels or {}), **labels_as_dict(dict(labels or {}))}
    # Kestra's system label tying a run to the run that started the chain.
    merged.setdefault(CORRELATION_LABEL, execution_id)
    execution = ExecutionRow(
        id=execution_id,
        namespace=namespace,
        flow_id=flow_id,
        flow_revision=revision_row.revision,
        revision_pk=revision_pk,
        git_commit_sha=revision_row.git_commit_sha,
        plan_id=revision_row.plan_id,
        origin=revision_row.origin,
        trigger=dict(trigger or {"type": "api"}),
        inputs=resolved,
        labels=merged,
        state=State.CREATED.value,
        concurrency_limit=spec.concurrency.limit if spec.concurrency else None,
    )
    if scheduled_at is not None and _aware(scheduled_at) > utcnow():
        # Stays CREATED until its date; the claim query queues it then.
        execution.wake_at = _aware(scheduled_at)
        execution.state_history = [
            {"state": State.CREATED.value, "date": utcnow().isoformat(), "reason": "scheduled"}
        ]
        session.add(execution)
        session.flush()
        return execution
    session.add(execution)
    concurrency = spec.concurrency
    if concurrency and concurrency.behavior != "QUEUE":
        busy = store.count_active(session, namespace, flow_id)
        if busy >= concurrency.limit:
            target = State.CANCELLED if concurrency.behavior == "CANCEL" else State.FAILED
            store.set_state(
                session, execution, target, f"concurrency limit {concurrency.limit} reached"
            )
            session.flush()
            return execution
    store.set_state(session, execution, State.QUEUED, "created")
    record_event(
        session,
        actor=str(execution.trigger.get("actor") or execution.trigger.get("type", "api")),
        action="execution.create",
        target=f"execution:{execution.id}",
        summary={"flow": f"{namespace}/{flow_id}", "revision": revision_row.revision},
    )
    session.flush()
    return execution


def _refuse_sealed_shapes(values: Mapping[str, Any], where: str) -> None:
    """Refuse a value shaped like a sealed secret: only the server seals (see sealing)."""
    for name, value in values.items():
        if contains_sealed(value):
            raise InvalidInputError(
                [Problem(path=f"{where}.{name}", message='a {"sealed": …} value is reserved')]
            )


def _pinned(session: Session, live: FlowRevisionRow, number: int) -> FlowRevisionRow:
    """Revision ``number`` of the flow whose live revision is ``live``."""
    pinned = session.exec(
        select(FlowRevisionRow).where(
            col(FlowRevisionRow.flow_pk) == live.flow_pk,
            col(FlowRevisionRow.revision) == number,
        )
    ).first()
    if pinned is None or pinned.pk is None or pinned.deleted:
        raise NotFoundError(f"flow {live.namespace}/{live.flow_id} has no revision {number}")
    return pinned


def trigger_webhook(
    engine: Engine, namespace: str, flow_id: str, key: str, payload: Mapping[str, Any]
) -> ExecutionRow:
    """Start a run for the flow's Webhook trigger whose key matches.

    An unknown flow, a disabled trigger and a wrong key all answer 404, so
    keys cannot be probed. ``payload`` (body, headers, parameters) becomes
    ``trigger.*`` in templates.
    """
    with Session(engine) as session:
        _flow, revision = flow_store.get_live(session, namespace, flow_id)
        source = revision.source if revision else None
        # Switched off at run time (a trigger.Toggle task): answered as a disabled one.
        off = trigger_states.disabled_keys(session)
    if source is None:
        raise NotFoundError(f"no webhook {namespace}/{flow_id}/{key}")
    spec = stored_spec(source)
    for trigger in spec.triggers or []:
        if (namespace, flow_id, trigger.id) in off:
            continue
        if isinstance(trigger, Webhook) and not trigger.disabled and _key_of(trigger, spec) == key:
            if not _conditions_hold(trigger, payload):
                raise ConflictError(f"webhook {trigger.id}: its conditions do not hold")
            return create_execution(
                engine,
                namespace,
                flow_id,
                inputs=trigger.inputs or {},
                labels=labels_as_dict(trigger.labels) if trigger.labels else None,
                trigger={"type": "webhook", "id": trigger.id, **payload},
            )
    raise NotFoundError(f"no webhook {namespace}/{flow_id}/{key}")


def _key_of(trigger: Webhook, spec: Flow) -> str:
    """The webhook's key; a templated one (``{{ flow.id }}``) sees the flow's identity."""
    if "{" not in trigger.key:
        return trigger.key
    try:
        return str(
            expressions.render(trigger.key, {"flow": {"id": spec.id, "namespace": spec.namespace}})
        )
    except expressions.RenderError:
        return trigger.key  # an unrenderable key matches only itself, so never a caller


def _conditions_hold(trigger: Webhook, payload: Mapping[str, Any]) -> bool:
    """Expression conditions of a webhook, rendered with the incoming trigger.

    This is the one render in the request path: whether the webhook starts a
    run is the answer to the request, so it cannot wait for a worker. It is
    safe here for two reasons. The route calls it in the thread pool, never on
    the event loop. And every render is bounded (integer and text sizes, loop
    iterations, one second of CPU time; see ``controlplane.domain.pebble``),
    so a costly condition holds one pool thread for at most about a second
    and the server keeps answering. A condition that fails to render, or
    exceeds its bound, answers 409 with the reason, like one that does not hold.
    """
    for condition in trigger.conditions or []:
        if isinstance(condition, Expression):
            try:
                rendered = expressions.render(condition.expression, {"trigger": dict(payload)})
            except expressions.RenderError as exc:
                raise ConflictError(
                    f"webhook {trigger.id}: its condition could not be evaluated: {exc}"
                ) from exc
            if not expression_holds(rendered):
                return False
    return True


def get_execution(engine: Engine, execution_id: str) -> ExecutionDetail:
    """An execution and its task runs; ``NotFoundError`` when unknown."""
    with Session(engine) as session:
        execution = store.get_execution(session, execution_id)
        if execution is None:
            raise NotFoundError(f"execution {execution_id} does not exist")
        return ExecutionDetail(execution, store.task_runs_of(session, execution_id))


def resume_execution(
    engine: Engine, execution_id: str, *, actor: str, inputs: Mapping[str, Any]
) -> ExecutionRow:
    """Resume a paused execution once, recording who resumed it and with what.

    The Pause task's ``onResume`` inputs are validated like flow inputs.
    """
    with transaction(engine) as session:
        execution = store.get_execution(session, execution_id, lock=True)
        if execution is None:
            raise NotFoundError(f"execution {execution_id} does not exist")
        if execution.state != State.PAUSED.value:
            raise IllegalTransitionError(
                f"execution {execution_id} is {execution.state}, not PAUSED; only a paused "
                "execution can be resumed"
            )
        paused = store.paused_task_run(session, execution_id)
        if paused is None:
            raise IllegalTransitionError(
                f"execution {execution_id} is waiting for a subflow, not for a Pause task"
            )
        revision_source = _revision_source(session, execution)
        pause_task = _find_pause(revision_source, paused.task_id)
        resolved = resolve_inputs(pause_task.onResume or [], inputs) if pause_task else {}
        _refuse_sealed_shapes(resolved, "inputs")
        if pause_task is not None:
            hidden = [i.id for i in pause_task.onResume or [] if i.type == InputType.SECRET]
            resolved = seal(session, resolved, hidden)
        paused.state = State.SUCCESS.value
        paused.outputs = {"onResume": resolved}
        paused.resumed_by = actor
        paused.resumed_at = utcnow()
        paused.ended_at = paused.resumed_at
        session.add(paused)
        session.add(
            LogRow(
                execution_id=execution_id,
                task_run_id=paused.id,
                task_id=paused.task_id,
                level="INFO",
                message=f"resumed by {actor}",
            )
        )
        execution.wake_at = None
        store.set_state(session, execution, State.QUEUED, f"resumed by {actor}")
        record_event(
            session,
            actor=actor,
            action="execution.resume",
            target=f"execution:{execution_id}",
            summary={"task": paused.task_id, "inputs": sorted(resolved)},
        )
        return execution


def kill_execution(engine: Engine, execution_id: str, *, actor: str) -> ExecutionRow:
    """Kill a run and the subflow runs it started, in one transaction.

    A run nobody holds ends at once; one a worker holds is asked to stop.
    """
    with transaction(engine) as session:
        execution = store.get_execution(session, execution_id, lock=True)
        if execution is None:
            raise NotFoundError(f"execution {execution_id} does not exist")
        _kill(session, execution, reason=f"killed by {actor}", actor=actor)
        return execution


def _kill(session: Session, execution: ExecutionRow, *, reason: str, actor: str) -> None:
    # A run a worker holds is asked to stop; a waiting or queued one ends at once.
    held = execution.state == State.RUNNING.value and execution.lease_owner is not None
    store.set_state(session, execution, State.KILLING if held else State.KILLED, reason)
    record_event(
        session,
        actor=actor,
        action="execution.kill",
        target=f"execution:{execution.id}",
        summary={"reason": reason},
    )
    # As in Kestra, the subflow runs it started die with it.
    for run in store.task_runs_of(session, execution.id):
        child_id = run.outputs.get("executionId") if run.task_type == Subflow.TYPE else None
        child = store.get_execution(session, str(child_id), lock=True) if child_id else None
        if child is not None and State(child.state) not in TERMINAL | {State.KILLING}:
            _kill(session, child, reason=f"parent {execution.id} was killed", actor=actor)


def _revision_source(session: Session, execution: ExecutionRow) -> str:
    revision = session.get(FlowRevisionRow, execution.revision_pk)
    assert revision is not None  # noqa: S101 - foreign key
    return revision.source


def _find_pause(source: str, task_id: str) -> Pause | None:
    spec = stored_spec(source)
    for lists in spec.all_task_lists().values():
        for _path, task in iter_tasks(lists, ()):
            if task.id == task_id and isinstance(task, Pause):
                return task
    return None


def restart_execution(engine: Engine, execution_id: str, *, actor: str) -> ExecutionRow:
    """Run a FAILED, KILLED or WARNING execution again from its unsuccessful tasks.

    As in Kestra, the run stays on the revision it was created with, its
    successful task runs are kept (their outputs feed the rerun), and the
    others run again as a new attempt. The state history records the restart;
    any other state is refused by the transition rules.
    """
    with transaction(engine) as session:
        execution = store.get_execution(session, execution_id, lock=True)
        if execution is None:
            raise NotFoundError(f"execution {execution_id} does not exist")
        store.set_state(session, execution, State.QUEUED, f"restarted by {actor}")
        restarted = store.restart_task_runs(session, execution_id)
        execution.ended_at = None
        execution.wake_at = None
        execution.outputs = {}
        session.add(
            LogRow(
                execution_id=execution_id,
                level="INFO",
                message=f"restarted by {actor} from {len(restarted)} unsuccessful task runs",
            )
        )
        record_event(
            session,
            actor=actor,
            action="execution.restart",
            target=f"execution:{execution_id}",
            summary={"tasks": sorted({run.task_id for run in restarted})},
        )
        return execution


def fire_schedule(
    engine: Engine,
    revision: FlowRevisionRow,
    trigger: Schedule,
    moment: datetime,
    *,
    backfill: bool = False,
) -> ExecutionRow | None:
    """Create the execution a Schedule fires at ``moment``, at most once ever.

    The fire's unique key is inserted in the same transaction as the
    execution; when that time was already fired (by a scheduler or an earlier
    backfill) nothing is created and None is returned.
    """
    fired: dict[str, Any] = {"type": "schedule", "id": trigger.id, "date": moment.isoformat()}
    if backfill:
        fired["backfill"] = True
    try:
        with transaction(engine) as session:
            execution = create_in_session(
                session,
                revision.namespace,
                revision.flow_id,
                inputs=trigger.inputs or {},
                labels=labels_as_dict(trigger.labels) if trigger.labels else None,
                trigger=fired,
            )
            session.add(
                TriggerFireRow(
                    namespace=revision.namespace,
                    flow_id=revision.flow_id,
                    trigger_id=trigger.id,
                    scheduled_at=moment,
                    execution_id=execution.id,
                )
            )
    except StoreError as exc:
        # Only the fire's unique key means "already fired"; any other store
        # error must reach the caller, or a scheduled time is lost silently.
        if isinstance(exc.__cause__, IntegrityError):
            return None
        raise
    return execution


def backfill_schedule(
    engine: Engine,
    namespace: str,
    flow_id: str,
    trigger_id: str,
    *,
    start: datetime,
    end: datetime,
    actor: str,
) -> list[ExecutionRow]:
    """Create the executions a Schedule trigger would have fired in ``[start, end]``.

    Each carries ``trigger.date`` as a scheduled run does. Times already fired,
    by the scheduler or an earlier backfill, are skipped, so repeating a
    backfill creates nothing twice. ``end`` may not lie in the future.
    """
    start, end = _aware(start), _aware(end)
    if end < start:
        raise InvalidRequestError("backfill end is before its start")
    if end > utcnow():
        raise InvalidRequestError("backfill end is in the future; the scheduler fires those times")
    with Session(engine) as session:
        _flow, revision = flow_store.get_live(session, namespace, flow_id)
    if revision is None:
        raise NotFoundError(f"flow {namespace}/{flow_id} does not exist")
    spec = stored_spec(revision.source)
    trigger = next(
        (t for t in spec.triggers or [] if isinstance(t, Schedule) and t.id == trigger_id), None
    )
    if trigger is None:
        raise NotFoundError(f"flow {namespace}/{flow_id} has no Schedule trigger {trigger_id!r}")
    created = [
        execution
        for moment in _cron_times(trigger, start, end)
        if (execution := fire_schedule(engine, revision, trigger, moment, backfill=True))
    ]
    with transaction(engine) as session:
        record_event(
            session,
            actor=actor,
            action="execution.backfill",
            target=f"flow:{namespace}/{flow_id}",
            summary={
                "trigger": trigger_id,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "created": len(created),
            },
        )
    return created


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cron_times(trigger: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """The trigger's cron times in ``[start, end]``, in its time zone, as UTC datetimes."""
    zone = ZoneInfo(trigger.timezone)
    # croniter yields times strictly after its start: begin just before ``start``.
    before = (start - timedelta(microseconds=1)).astimezone(zone)
    iterator = croniter(trigger.cron, before, second_at_beginning=True)
    times: list[datetime] = []
    while True:
        moment = iterator.get_next(datetime)
        if moment > end:
            return times
        if len(times) >= MAX_BACKFILL:
            raise InvalidRequestError(
                f"the backfill would create more than {MAX_BACKFILL} executions; split the interval"
            )
        times.append(moment.astimezone(UTC))
