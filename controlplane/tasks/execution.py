"""Tasks that act on executions: Labels, Resume and log.Fetch.

Labels acts only on its own run. Resume and log.Fetch may name a run of another
namespace only when that namespace lists this flow's namespace in
``allowed_namespaces``; Resume also needs a reviewer behind the running
revision (``services.task_authority``), as resuming through the API does.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from controlplane.domain.fields import LogLevel, State
from controlplane.domain.spec import labels_as_dict
from controlplane.domain.tasktypes import core
from controlplane.errors import FlowplaneError
from controlplane.services.executions import resume_execution
from controlplane.services.namespaces import ensure_namespace_allowed
from controlplane.services.task_authority import ensure_resume_authority
from controlplane.store import executions as store
from controlplane.store.db import as_utc, transaction
from controlplane.store.tables import ExecutionRow
from controlplane.tasks.context import RunContext, TaskFailedError

_LEVELS = list(LogLevel)


def run_labels(task: core.Labels, run: RunContext) -> dict[str, Any]:
    """Add or override labels on the running execution (a map, a key/value list, or JSON)."""
    rendered = run.render(task.labels)
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered)
        except json.JSONDecodeError:
            message = f"labels rendered to {rendered!r}, not a JSON map or list"
            raise TaskFailedError(message) from None
    if not isinstance(rendered, dict | list):
        raise TaskFailedError("labels must be a map, or a list of {key, value} pairs")
    try:
        labels = {str(k): _label_text(v) for k, v in labels_as_dict(rendered).items()}
    except ValueError as exc:
        raise TaskFailedError(f"labels: {exc}") from None
    # Labels are shown on every list and page and are not sealed, so a secret never goes there.
    tainted = sorted(k for k, v in labels.items() if run.is_secret(k) or run.is_secret(v))
    if tainted:
        named = ", ".join("******" if run.is_secret(k) else k for k in tainted)
        raise TaskFailedError(f"labels cannot carry secret values ({named})")
    with transaction(run.engine) as session:
        row = store.get_execution(session, run.execution.id, lock=True)
        if row is None:
            raise TaskFailedError("the execution no longer exists")
        row.labels = {**row.labels, **labels}
        session.add(row)
        merged = dict(row.labels)
    # Later templates in this run see the new labels.
    run.execution.labels = merged
    run.log("INFO", f"labels set: {', '.join(sorted(labels))}")
    return {}


def _label_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else json.dumps(value, default=str)


def run_resume(task: core.Resume, run: RunContext) -> dict[str, Any]:
    """Resume another paused execution; the flow running this task is recorded as the actor."""
    target = _target_execution(
        run, task.executionId, task.namespace, task.flowId, paused=True, action="Resume"
    )
    if target.id == run.execution.id:
        raise TaskFailedError("an execution cannot resume itself; give executionId")
    actor = f"flow:{run.execution.namespace}/{run.execution.flow_id}"
    try:
        ensure_resume_authority(run.engine, run.execution, target.namespace)
        resume_execution(run.engine, target.id, actor=actor, inputs=run.render(task.inputs or {}))
    except FlowplaneError as exc:
        raise TaskFailedError(str(exc)) from None
    run.log("INFO", f"resumed execution {target.id}")
    return {
        "resumedExecution": {
            "id": target.id,
            "namespace": target.namespace,
            "flowId": target.flow_id,
        }
    }


def run_fetch(task: core.Fetch, run: RunContext) -> dict[str, Any]:
    """Write an execution's log lines at ``level`` or above to a file (``uri``, ``size``)."""
    target = _target_execution(
        run, task.executionId, task.namespace, task.flowId, paused=False, action="log.Fetch"
    )
    wanted = set(task.tasksId or [])
    floor = _LEVELS.index(task.level)
    with Session(run.engine) as session:
        rows = [
            row
            for row in store.logs_of(session, target.id)
            if (not wanted or row.task_id in wanted)
            and row.level in LogLevel.__members__
            and _LEVELS.index(LogLevel(row.level)) >= floor
        ]
    path = run.working_dir / f"logs-{target.id}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            line = {
                "taskId": row.task_id,
                "taskRunId": row.task_run_id,
                "level": row.level,
                "message": row.message,
                "timestamp": as_utc(row.timestamp).isoformat(),
            }
            handle.write(json.dumps(line) + "\n")
    return {"uri": str(path), "size": len(rows)}


def _target_execution(
    run: RunContext,
    execution_id: str | None,
    namespace: str | None,
    flow_id: str | None,
    *,
    paused: bool,
    action: str,
) -> ExecutionRow:
    """The execution a task names: by id, else a paused run of ``namespace/flowId``, else this one.

    When both an id and a flow are given they must agree, so permissions stay
    explicit. A run of another namespace is returned only when that namespace
    lets this flow's namespace do ``action`` there.
    """
    rendered_id = str(run.render(execution_id)) if execution_id else None
    rendered_ns = str(run.render(namespace)) if namespace else None
    rendered_flow = str(run.render(flow_id)) if flow_id else None
    if rendered_ns:
        _ensure_allowed(run, rendered_ns, action)  # before looking inside it at all
    with Session(run.engine) as session:
        if rendered_id:
            row = store.get_execution(session, rendered_id)
        elif rendered_ns and rendered_flow and paused:
            row = session.exec(
                select(ExecutionRow)
                .where(
                    col(ExecutionRow.namespace) == rendered_ns,
                    col(ExecutionRow.flow_id) == rendered_flow,
                    col(ExecutionRow.state) == State.PAUSED.value,
                )
                .order_by(col(ExecutionRow.created_at).desc())
            ).first()
        else:
            row = store.get_execution(session, run.execution.id)
    if row is None:
        wanted_run = rendered_id or rendered_flow or "this run"
        raise TaskFailedError(f"no execution found for {wanted_run}")
    if rendered_ns and row.namespace != rendered_ns:
        raise TaskFailedError(f"execution {row.id} is not in namespace {rendered_ns}")
    if rendered_flow and row.flow_id != rendered_flow:
        raise TaskFailedError(f"execution {row.id} is not a run of flow {rendered_flow}")
    _ensure_allowed(run, row.namespace, action)
    return row


def _ensure_allowed(run: RunContext, namespace: str, action: str) -> None:
    try:
        ensure_namespace_allowed(run.engine, run.execution.namespace, namespace, action)
    except FlowplaneError as exc:
        raise TaskFailedError(str(exc)) from None
