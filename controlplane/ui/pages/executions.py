"""Executions: the filtered list, one run's timeline, logs, outputs and lineage, resume and kill."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from controlplane.domain.fields import State
from controlplane.domain.transitions import TERMINAL
from controlplane.errors import ConflictError, InvalidInputError, NotFoundError
from controlplane.services import executions as execution_service
from controlplane.services import lineage as lineage_service
from controlplane.services.access import Principal
from controlplane.services.masking import SecretFields, mask_sealed
from controlplane.store import executions as execution_store
from controlplane.store.tables import ExecutionRow, LogRow, TaskRunRow
from controlplane.ui import queries
from controlplane.ui.identity import Editor, Reviewer, Viewer, engine_of
from controlplane.ui.rendering import page
from controlplane.ui.resume_form import (
    ResumeForm,
    build_form,
    field_errors,
    form_values,
    pause_inputs,
)

router = APIRouter()
_STATES = [state.value for state in State]
_LIVE = {State.CREATED.value, State.QUEUED.value, State.RUNNING.value, State.KILLING.value}


async def _form(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(_form)]


@router.get("/executions")
def execution_list(
    request: Request,
    principal: Viewer,
    namespace: Annotated[str, Query(max_length=150)] = "",
    flow_id: Annotated[str, Query(max_length=100)] = "",
    state: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Executions, newest first, filtered by namespace, flow and state."""
    rows = queries.executions(
        engine_of(request), principal, namespace=namespace, flow_id=flow_id, state=state, limit=200
    )
    context = {
        "nav": "executions",
        "executions": rows,
        "filters": {"namespace": namespace, "flow_id": flow_id, "state": state},
        "states": _STATES,
    }
    return page(request, "executions.html", context)


@dataclass(frozen=True)
class TimelineRow:
    """A task run placed on the run's time axis (percentages of the whole run)."""

    run: TaskRunRow
    depth: int
    left: float
    width: float
    outputs: dict[str, Any]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _timeline(
    execution: ExecutionRow, runs: Sequence[TaskRunRow], secrets: SecretFields
) -> list[TimelineRow]:
    start = _utc(execution.created_at)
    end = _utc(execution.ended_at) if execution.ended_at else datetime.now(UTC)
    for run in runs:
        end = max(end, _utc(run.ended_at or run.started_at))
    span = max((end - start).total_seconds(), 0.001)
    parents = {run.id: run.parent_id for run in runs}

    def depth(run_id: str | None) -> int:
        level = 0
        while run_id and (run_id := parents.get(run_id)):
            level += 1
        return level

    rows = []
    for run in runs:
        left = max((_utc(run.started_at) - start).total_seconds(), 0) / span * 100
        stop = _utc(run.ended_at) if run.ended_at else end
        width = max((stop - _utc(run.started_at)).total_seconds() / span * 100, 0.6)
        outputs = secrets.mask_outputs(run.task_id, run.outputs)
        rows.append(
            TimelineRow(
                run, depth(run.id), round(left, 2), round(min(width, 100 - left), 2), outputs
            )
        )
    return rows


def _visible_execution(request: Request, principal: Principal, execution_id: str) -> ExecutionRow:
    with Session(engine_of(request)) as session:
        execution = execution_store.get_execution(session, execution_id)
    if execution is None:
        raise NotFoundError(f"execution {execution_id} does not exist")
    principal.check_namespace(execution.namespace)
    return execution


def _execution_page(
    request: Request,
    principal: Principal,
    execution_id: str,
    *,
    form: ResumeForm | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    engine = engine_of(request)
    execution = _visible_execution(request, principal, execution_id)
    with Session(engine) as session:
        runs = execution_store.task_runs_of(session, execution_id)
        logs: Sequence[LogRow] = execution_store.logs_of(session, execution_id)
    revision = queries.revision_of(engine, execution)
    source = revision.source if revision and not revision.deleted else ""
    secrets = SecretFields.of(source)
    paused = execution.state == State.PAUSED.value
    if form is None and paused and principal.has_role("reviewer"):
        found = pause_inputs(engine, execution)
        if found is not None:
            form = build_form(found[0], found[1])
    lineage = lineage_service.execution_lineage(engine, execution_id)
    lineage["revision"].pop("source", None)  # shown on the flow page, not here
    targets = [f"execution:{execution_id}"]
    if execution.plan_id:
        targets.append(f"plan:{execution.plan_id}")
    context = {
        "nav": "executions",
        "execution": execution,
        "inputs": secrets.mask_inputs(execution.inputs),
        "outputs": mask_sealed(execution.outputs),
        "timeline": _timeline(execution, runs, secrets),
        "logs": logs,
        "live": execution.state in _LIVE,
        "terminal": State(execution.state) in TERMINAL,
        "paused": paused,
        "form": form,
        "error": error,
        "lineage": lineage,
        "events": queries.events_for(engine, targets),
    }
    return page(request, "execution.html", context, status_code=status_code)


@router.get("/executions/{execution_id}")
def execution_page(request: Request, principal: Viewer, execution_id: str) -> Response:
    """One run: its task timeline, logs, outputs and lineage; a resume form when paused."""
    return _execution_page(request, principal, execution_id)


@router.post("/executions/{execution_id}/resume")
def resume(request: Request, principal: Reviewer, execution_id: str, form: FormDep) -> Response:
    """Resume a paused run with the form's ``onResume`` values; bad ones re-render the form."""
    engine = engine_of(request)
    execution = _visible_execution(request, principal, execution_id)
    found = pause_inputs(engine, execution)
    task_id, declared = found if found is not None else ("", [])
    values = form_values(declared, form)
    try:
        execution_service.resume_execution(
            engine, execution_id, actor=principal.actor, inputs=values
        )
    except InvalidInputError as exc:
        rebuilt = build_form(
            task_id,
            declared,
            given=values,
            errors=field_errors(exc.problems),
            error="Some values do not fit; nothing was resumed.",
        )
        return _execution_page(request, principal, execution_id, form=rebuilt, status_code=422)
    except ConflictError as exc:
        return _execution_page(request, principal, execution_id, error=str(exc), status_code=409)
    base = str(request.scope.get("root_path", "")).rstrip("/")
    return RedirectResponse(f"{base}/executions/{execution_id}", status_code=303)


@router.post("/executions/{execution_id}/kill")
def kill(request: Request, principal: Editor, execution_id: str) -> Response:
    """Kill the run (editors and above)."""
    _visible_execution(request, principal, execution_id)
    try:
        execution_service.kill_execution(engine_of(request), execution_id, actor=principal.actor)
    except ConflictError as exc:
        return _execution_page(request, principal, execution_id, error=str(exc), status_code=409)
    base = str(request.scope.get("root_path", "")).rstrip("/")
    return RedirectResponse(f"{base}/executions/{execution_id}", status_code=303)
