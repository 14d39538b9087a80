"""Flow triggers: start downstream flows when an upstream execution ends.

Every condition of ``controlplane.domain.conditions`` applies, tested against
the ending execution (``Upstream``) plus the trigger's own ``states``. The
date conditions read ``trigger.date``, the moment the upstream run ended
(Kestra gives a Flow trigger no date; Flowplane does, so their default
``date`` works), or any ``date`` template over ``trigger`` and ``execution``.
``preconditions`` (upstream ``flows`` and ``where`` groups, within a
``timeWindow``) and MultipleCondition gather upstream ends across executions
and fire once the whole set is met in one window.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dt_time
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from controlplane.domain import conditions as cond
from controlplane.domain import expressions
from controlplane.domain.conditions import ConditionContext, Upstream, window_bounds
from controlplane.domain.durations import parse_duration
from controlplane.domain.fields import State
from controlplane.domain.spec import labels_as_dict
from controlplane.domain.triggers import FlowTrigger, PreconditionFilter, PreconditionWhere
from controlplane.errors import FlowplaneError, StoreError
from controlplane.logging import get_logger
from controlplane.services.executions import create_execution, get_execution
from controlplane.services.namespaces import ensure_namespace_allowed
from controlplane.services.revisions import stored_spec
from controlplane.store import kv, trigger_states
from controlplane.store.db import as_utc, transaction
from controlplane.store.flows import live_sources_like
from controlplane.store.tables import ExecutionRow, TaskRunRow, utcnow

log = get_logger(__name__)

_DEFAULT_STATES = {State.SUCCESS, State.WARNING, State.FAILED, State.KILLED, State.CANCELLED}


def fire_flow_triggers(engine: Engine, upstream: ExecutionRow) -> list[str]:
    """Create one execution per matching Flow trigger; return their ids."""
    with Session(engine) as session:
        # Only sources that can hold a Flow trigger; the parsed spec decides below.
        candidates = live_sources_like(session, "trigger.Flow", "type: Flow")
        if not candidates:
            return []
        # Switched off at run time (a trigger.Toggle task): they do not listen.
        off = trigger_states.disabled_keys(session)
    event = {
        "type": "flow",
        "executionId": upstream.id,
        "namespace": upstream.namespace,
        "flowId": upstream.flow_id,
        "state": upstream.state,
        "outputs": upstream.outputs,
    }
    task_runs = get_execution(engine, upstream.id).task_runs
    # Kestra renders trigger inputs against the upstream run's task outputs.
    task_outputs = {run.task_id: run.outputs for run in task_runs if run.value_key == ""}
    context = _condition_context(upstream, event, task_runs)
    started: list[str] = []
    for namespace, flow_id, source in candidates:
        for trigger in stored_spec(source).triggers or []:
            if not isinstance(trigger, FlowTrigger) or trigger.disabled:
                continue
            if (namespace, flow_id, trigger.id) in off:
                continue
            # The fault boundary of one listener: a broken condition or input is
            # logged against the listener, and the other listeners still fire.
            try:
                created = _fire_one(
                    engine, namespace, flow_id, trigger, upstream, event, task_outputs, context
                )
            except (SQLAlchemyError, StoreError):
                raise
            except Exception as exc:  # noqa: BLE001 - one listener's failure stays its own
                log.warning(
                    "flow_trigger_failed",
                    listener=f"{namespace}/{flow_id}",
                    trigger=trigger.id,
                    upstream=upstream.id,
                    error=f"{type(exc).__name__}: {exc}",
                )
                continue
            if created is not None:
                started.append(created)
    return started


def _condition_context(
    upstream: ExecutionRow, event: dict[str, Any], task_runs: Sequence[TaskRunRow]
) -> ConditionContext:
    """What a listener's conditions see of the upstream end.

    Each attempt before a task run's last one failed (that is what made it
    retry), so a run of ``attempt`` n had n - 1 FAILED attempts, then its state.
    """
    ended = as_utc(upstream.ended_at) if upstream.ended_at else utcnow()
    retried = tuple(
        (*(State.FAILED,) * (run.attempt - 1), State(run.state))
        for run in task_runs
        if run.attempt > 1
    )
    execution = {
        "id": upstream.id,
        "namespace": upstream.namespace,
        "flowId": upstream.flow_id,
        "state": upstream.state,
        "labels": upstream.labels,
        "outputs": upstream.outputs,
        "startDate": as_utc(upstream.created_at).isoformat(),
        "endDate": ended.isoformat(),
    }
    return ConditionContext(
        variables={"trigger": {**event, "date": ended.isoformat()}, "execution": execution},
        upstream=Upstream(
            namespace=upstream.namespace,
            flow_id=upstream.flow_id,
            state=State(upstream.state),
            labels=upstream.labels,
            retried=retried,
        ),
    )


def _fire_one(  # noqa: PLR0917 - the listener, its trigger, and the upstream end
    engine: Engine,
    namespace: str,
    flow_id: str,
    trigger: FlowTrigger,
    upstream: ExecutionRow,
    event: dict[str, Any],
    task_outputs: dict[str, Any],
    context: ConditionContext,
) -> str | None:
    """The id of the execution ``trigger`` starts for this upstream end, or None."""
    if not _matches(engine, namespace, flow_id, trigger, upstream, context):
        return None
    if namespace != upstream.namespace:
        # A listener reads the upstream run's outputs: its namespace must allow that.
        try:
            ensure_namespace_allowed(engine, namespace, upstream.namespace, "listen to its runs")
        except FlowplaneError as exc:
            log.info("flow_trigger_refused", listener=f"{namespace}/{flow_id}", reason=str(exc))
            return None
    inputs = expressions.render_value(
        trigger.inputs or {}, {"trigger": event, "outputs": task_outputs}
    )
    created = create_execution(
        engine,
        namespace,
        flow_id,
        inputs=inputs,
        labels=labels_as_dict(trigger.labels) if trigger.labels else None,
        trigger={**event, "id": trigger.id},
    )
    return created.id


def _matches(  # noqa: PLR0917 - the downstream flow's identity, its trigger and the event
    engine: Engine,
    namespace: str,
    flow_id: str,
    trigger: FlowTrigger,
    upstream: ExecutionRow,
    context: ConditionContext,
) -> bool:
    """Whether this upstream end fires the trigger.

    Simple conditions must hold for this very execution. Preconditions and
    MultipleConditions gather upstream ends across executions: each names
    several requirements, and the trigger fires on the end that completes the
    set within its time window.
    """
    state = State(upstream.state)
    if state not in set(trigger.states or _DEFAULT_STATES):
        return False
    simple = [c for c in trigger.conditions or [] if not isinstance(c, cond.Multiple)]
    if cond.first_failing(simple, context) is not None:
        return False
    gathered = _requirement_sets(trigger, upstream, context)
    return all(
        _window_complete(engine, namespace, flow_id, trigger.id, requirement)
        for requirement in gathered
    )


@dataclass(frozen=True)
class _Requirements:
    """Named requirements met across executions within one time window."""

    id: str
    met_now: frozenset[str]  # the names this upstream end satisfies
    names: frozenset[str]
    kind: str
    window: timedelta | None
    advance: timedelta | None = None
    start_time: dt_time | None = None
    end_time: dt_time | None = None
    reset_on_success: bool = True


def _requirement_sets(
    trigger: FlowTrigger, upstream: ExecutionRow, context: ConditionContext
) -> list[_Requirements]:
    event = context.variables["trigger"]
    sets: list[_Requirements] = []
    for index, condition in enumerate(trigger.conditions or []):
        if isinstance(condition, cond.Multiple):
            met = {
                name
                for name, sub in condition.conditions.items()
                if cond.condition_holds(sub, context, f"conditions[{index}].conditions.{name}")
            }
            sets.append(
                _Requirements(
                    id=condition.id or f"conditions.{index}",
                    met_now=frozenset(met),
                    names=frozenset(condition.conditions),
                    kind="DURATION_WINDOW",
                    window=parse_duration(condition.window),
                    advance=parse_duration(condition.windowAdvance),
                )
            )
    pre = trigger.preconditions
    if pre is not None and (pre.flows or pre.where):
        state = State(upstream.state)
        names: set[str] = set()
        met = set()
        for index, flow in enumerate(pre.flows or []):
            name = f"flows.{index}"
            names.add(name)
            if (flow.namespace, flow.flowId) == (upstream.namespace, upstream.flow_id) and (
                state in flow.states
            ):
                met.add(name)
        for group in pre.where or []:
            name = f"where.{group.id}"
            names.add(name)
            if _where_holds(group, upstream, event):
                met.add(name)
        window = pre.timeWindow
        sets.append(
            _Requirements(
                id=pre.id or "preconditions",
                met_now=frozenset(met),
                names=frozenset(names),
                kind=window.type if window else "DURATION_WINDOW",
                window=parse_duration(window.window) if window and window.window else None,
                advance=(
                    parse_duration(window.windowAdvance)
                    if window and window.windowAdvance
                    else None
                ),
                start_time=_clock(window.startTime) if window else None,
                end_time=_clock(window.endTime or window.deadline) if window else None,
                reset_on_success=pre.resetOnSuccess,
            )
        )
    return sets


def _clock(text: str | None) -> dt_time | None:
    return dt_time.fromisoformat(text) if text else None


def _window_complete(
    engine: Engine, namespace: str, flow_id: str, trigger_id: str, requirement: _Requirements
) -> bool:
    """Record what this upstream end meets; True when the whole set is met in the window.

    The progress is kept in the downstream namespace's key-value table under a
    ``precondition:`` key (never a valid user key), expiring with its window.
    """
    now = utcnow()
    bounds = window_bounds(
        requirement.kind,
        now,
        window=requirement.window,
        advance=requirement.advance,
        start_time=requirement.start_time,
        end_time=requirement.end_time,
    )
    if bounds is None or not requirement.met_now:
        return False
    start, end = bounds
    key = f"precondition:{flow_id}:{trigger_id}:{requirement.id}"
    with transaction(engine) as session:
        entry = kv.get_entry(session, namespace, key)
        progress = entry.value if entry and isinstance(entry.value, dict) else {}
        same_window = requirement.kind == "SLIDING_WINDOW" or progress.get("start") == (
            start.isoformat()
        )
        met: dict[str, str] = dict(progress.get("met", {})) if same_window else {}
        # A sliding window forgets what was met before it began.
        met = {name: at for name, at in met.items() if datetime.fromisoformat(at) >= start}
        met.update(dict.fromkeys(requirement.met_now, now.isoformat()))
        complete = requirement.names <= set(met)
        if complete and requirement.reset_on_success:
            kv.delete_entry(session, namespace, key)
        else:
            expires = end if requirement.kind != "SLIDING_WINDOW" else now + (end - start)
            value = {"start": start.isoformat(), "met": met}
            kv.put_entry(session, namespace, key, value, expires_at=expires)
    return complete


def _where_holds(group: PreconditionWhere, upstream: ExecutionRow, event: dict[str, Any]) -> bool:
    results = [_filter_holds(f, upstream, event) for f in group.filters]
    return any(results) if group.operand == "OR" else all(results)


def _filter_holds(flt: PreconditionFilter, upstream: ExecutionRow, event: dict[str, Any]) -> bool:
    if flt.field == "LABELS":
        wanted = flt.value if isinstance(flt.value, dict) else {}
        has = all(str(upstream.labels.get(k)) == str(v) for k, v in wanted.items())
        return has if flt.type != "NOT_EQUAL_TO" else not has
    if flt.field == "EXPRESSION":
        context = {"trigger": event, "labels": upstream.labels, "outputs": upstream.outputs}
        subject: Any = expressions.render(str(flt.value), context).strip().lower()
        if flt.type in {"IS_TRUE", "IS_FALSE"}:
            return (subject in {"true", "1"}) == (flt.type == "IS_TRUE")
    else:
        subject = upstream.namespace if flt.field == "NAMESPACE" else upstream.flow_id
    return _compare(flt, str(subject))


def _compare(flt: PreconditionFilter, subject: str) -> bool:  # noqa: PLR0911 - one per type
    value = "" if flt.value is None else str(flt.value)
    listed = [str(v) for v in flt.values or []]
    if flt.type == "EQUAL_TO":
        return subject == value
    if flt.type == "NOT_EQUAL_TO":
        return subject != value
    if flt.type == "STARTS_WITH":
        return subject.startswith(value)
    if flt.type == "ENDS_WITH":
        return subject.endswith(value)
    if flt.type == "CONTAINS":
        return value in subject
    if flt.type == "REGEX":
        return re.fullmatch(value, subject) is not None
    if flt.type in {"IN", "NOT_IN"}:
        return (subject in listed) == (flt.type == "IN")
    return bool(subject) == (flt.type == "IS_NOT_NULL")
