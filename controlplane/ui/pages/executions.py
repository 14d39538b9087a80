"""Executions: the filtered list, one run's timeline, logs, outputs and lineage, resume and kill."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response, StreamingResponse

from controlplane.api.streaming import FollowResponse
from controlplane.domain.fields import State
from controlplane.domain.transitions import TERMINAL
from controlplane.errors import ConflictError, InvalidInputError, NotFoundError
from controlplane.services import executions as execution_service
from controlplane.services import lineage as lineage_service
from controlplane.services.access import Principal
from controlplane.services.log_follow import End, notifier_of
from controlplane.services.masking import SecretFields, mask_sealed
from controlplane.services.revisions import stored_spec
from controlplane.store import executions as execution_store
from controlplane.store.tables import ExecutionRow, LogRow, TaskRunRow
from controlplane.ui import listing, queries
from controlplane.ui.graph import flow_graph, render_svg, run_states
from controlplane.ui.identity import Editor, Reviewer, Viewer, engine_of
from controlplane.ui.rendering import level_rank, page, state_classes, when
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
# What a restart accepts (the transition rules refuse the rest).
_RESTARTABLE = {State.FAILED.value, State.KILLED.value, State.WARNING.value}
LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")
# How often the follow stream polls the database for new lines.
_FOLLOW_POLL_SECONDS = 0.25


async def _form(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(_form)]


Day = Annotated[str, Query(max_length=10)]


@router.get("/executions")
def execution_list(
    request: Request,
    principal: Viewer,
    *,
    namespace: Annotated[str, Query(max_length=150)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
    flow_id: Annotated[str, Query(max_length=100)] = "",
    state: Annotated[str, Query(max_length=20)] = "",
    since: Day = "",
    until: Day = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    """Executions, newest first: namespace prefix, text, state and days, a page at a time."""
    days = listing.DateRange(listing.parse_day(since), listing.parse_day(until))
    flt = listing.ExecutionFilter(namespace=namespace, q=q, flow_id=flow_id, state=state, days=days)
    context = {
        "nav": "executions",
        "page": listing.execution_page(engine_of(request), principal, flt, page_number),
        "filters": {
            "namespace": namespace,
            "q": q,
            "flow_id": flow_id,
            "state": state,
            "since": since,
            "until": until,
        },
        "states": _STATES,
    }
    return page(request, "executions.html", context)


@dataclass(frozen=True)
class Attempt:
    """One attempt of a task run: its number, how it ended, and the error it logged."""

    number: int
    state: str
    error: str | None


def attempts_of(run: TaskRunRow, logs: Sequence[LogRow]) -> list[Attempt]:
    """Every attempt of ``run``, oldest first.

    Only the latest attempt's state is stored; each earlier one ended by
    failing and logging one ERROR line (the worker's retry loop and a restart
    both start a new attempt after a failure), so the n-th ERROR line of the
    task run is the n-th attempt's error.
    """
    errors = [line.message for line in logs if line.task_run_id == run.id and line.level == "ERROR"]
    found = []
    for number in range(1, run.attempt + 1):
        error = errors[number - 1] if number <= len(errors) else None
        state = run.state if number == run.attempt else State.FAILED.value
        found.append(Attempt(number, state, error if number < run.attempt else None))
    return found


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
    graph = None
    if source:
        states = run_states((run.task_id, run.state) for run in runs)
        graph = render_svg(
            flow_graph(stored_spec(source), states),
            title=f"Task graph of run {execution_id[:12]}, coloured by state",
            state_class=state_classes(),
            run=True,
        )
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
        "levels": LEVELS,
        "attempts": {run.id: attempts_of(run, logs) for run in runs if run.attempt > 1},
        "graph": graph,
        "restartable": execution.state in _RESTARTABLE,
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


@router.post("/executions/{execution_id}/restart")
def restart(request: Request, principal: Editor, execution_id: str) -> Response:
    """Run a failed, killed or warning run again from its unsuccessful tasks (editors and above)."""
    _visible_execution(request, principal, execution_id)
    try:
        execution_service.restart_execution(engine_of(request), execution_id, actor=principal.actor)
    except ConflictError as exc:
        return _execution_page(request, principal, execution_id, error=str(exc), status_code=409)
    base = str(request.scope.get("root_path", "")).rstrip("/")
    return RedirectResponse(f"{base}/executions/{execution_id}", status_code=303)


@router.get("/executions/{execution_id}/logs/follow")
async def follow_logs(
    request: Request,
    principal: Viewer,
    execution_id: str,
    after: Annotated[int, Query(ge=0)] = 0,
) -> StreamingResponse:
    """The run's log lines after position ``after`` as server-sent events, until it ends.

    The same stream as ``GET /api/v1/executions/{id}/logs/follow``, from the
    same async notifier (no thread per follower, a cap per viewer), but
    authenticated by the UI session: a browser's EventSource cannot send the
    API's bearer token.
    """
    await run_in_threadpool(_visible_execution, request, principal, execution_id)
    last = request.headers.get("Last-Event-ID", "")
    start = int(last) if last.isdigit() else after
    notifier = notifier_of(request.app.state.host)
    release = notifier.acquire(f"ui:{principal.name}")

    async def events() -> AsyncIterator[str]:
        async for item in notifier.follow(execution_id, after=start, keepalive=15.0):
            if item is None:
                yield ": keep-alive\n\n"
            elif isinstance(item, End):
                kind = "end" if item.reason == "ended" else "reconnect"
                body = {"state": item.state} if kind == "end" else {"reason": item.reason}
                yield f"event: {kind}\ndata: {json.dumps(body)}\n\n"
            else:
                data = {
                    "position": item.pk,
                    "timestamp": when(item.timestamp),
                    "level": item.level,
                    "rank": level_rank(item.level),
                    "task_id": item.task_id or "",
                    "message": item.message,
                }
                yield f"id: {item.pk}\nevent: log\ndata: {json.dumps(data)}\n\n"

    return FollowResponse(events(), release)
