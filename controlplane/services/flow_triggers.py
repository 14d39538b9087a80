"""Flow triggers: start downstream flows when an upstream execution ends.

Supported conditions: ExecutionFlow, ExecutionNamespace, ExecutionStatus and
ExpressionCondition, plus the trigger's own ``states`` and simple
``preconditions.flows``. MultipleCondition and time-windowed preconditions,
which need state across executions, are not evaluated yet: a trigger that uses
them does not fire, and a warning is logged.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.domain import conditions as cond
from controlplane.domain import expressions
from controlplane.domain.fields import State
from controlplane.domain.triggers import FlowTrigger
from controlplane.errors import FlowplaneError
from controlplane.logging import get_logger
from controlplane.services.executions import create_execution, get_execution
from controlplane.services.revisions import stored_spec
from controlplane.store.flows import FlowFilter, list_active
from controlplane.store.tables import ExecutionRow

log = get_logger(__name__)

_DEFAULT_STATES = {State.SUCCESS, State.WARNING, State.FAILED, State.KILLED, State.CANCELLED}


def fire_flow_triggers(engine: Engine, upstream: ExecutionRow) -> list[str]:
    """Create one execution per matching Flow trigger; return their ids."""
    with Session(engine) as session:
        rows, _ = list_active(session, FlowFilter(), offset=0, limit=1_000_000)
        candidates = [
            (revision.namespace, revision.flow_id, revision.source)
            for _flow, revision in rows
            if "trigger.Flow" in revision.source or "type: Flow" in revision.source
        ]
    event = {
        "type": "flow",
        "executionId": upstream.id,
        "namespace": upstream.namespace,
        "flowId": upstream.flow_id,
        "state": upstream.state,
        "outputs": upstream.outputs,
    }
    # Kestra renders trigger inputs against the upstream run's task outputs.
    task_outputs = {
        run.task_id: run.outputs
        for run in get_execution(engine, upstream.id).task_runs
        if run.value_key == ""
    }
    started: list[str] = []
    for namespace, flow_id, source in candidates:
        for trigger in stored_spec(source).triggers or []:
            if not isinstance(trigger, FlowTrigger) or trigger.disabled:
                continue
            if not _matches(trigger, upstream, event):
                continue
            try:
                inputs = expressions.render_value(
                    trigger.inputs or {}, {"trigger": event, "outputs": task_outputs}
                )
                created = create_execution(
                    engine, namespace, flow_id, inputs=inputs, trigger={**event, "id": trigger.id}
                )
                started.append(created.id)
            except (FlowplaneError, ValueError) as exc:
                log.warning("flow_trigger_failed", flow=f"{namespace}/{flow_id}", error=str(exc))
    return started


def _matches(trigger: FlowTrigger, upstream: ExecutionRow, event: dict[str, Any]) -> bool:
    state = State(upstream.state)
    if state not in set(trigger.states or _DEFAULT_STATES):
        return False
    if trigger.preconditions is not None:
        if trigger.preconditions.where or trigger.preconditions.timeWindow:
            log.warning(
                "flow_trigger_unsupported", trigger=trigger.id, reason="preconditions.where"
            )
            return False
        flows = trigger.preconditions.flows or []
        if flows and not any(
            f.namespace == upstream.namespace and f.flowId == upstream.flow_id and state in f.states
            for f in flows
        ):
            return False
    return all(_condition_holds(c, upstream, event) for c in trigger.conditions or [])


def _condition_holds(condition: Any, upstream: ExecutionRow, event: dict[str, Any]) -> bool:
    if isinstance(condition, cond.ExecutionFlow):
        return (condition.namespace, condition.flowId) == (upstream.namespace, upstream.flow_id)
    if isinstance(condition, cond.ExecutionNamespace):
        if condition.prefix or condition.comparison == "PREFIX":
            return upstream.namespace.startswith(condition.namespace)
        return upstream.namespace == condition.namespace
    if isinstance(condition, cond.ExecutionStatus):
        state = State(upstream.state)
        return (condition.in_ is None or state in condition.in_) and state not in (
            condition.notIn or []
        )
    if isinstance(condition, cond.Expression):
        rendered = expressions.render(condition.expression, {"trigger": event})
        return rendered.strip().lower() in {"true", "1"}
    log.warning("flow_trigger_unsupported", condition=type(condition).__name__)
    return False
