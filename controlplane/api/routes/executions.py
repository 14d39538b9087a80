"""``/api/v1/executions``: start, read, follow, resume, kill, restart and backfill runs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from controlplane.api.auth import Editor, Reviewer, Viewer
from controlplane.api.deps import EngineDep, PageDep
from controlplane.api.limits import MAX_DB_INT, Text
from controlplane.api.schemas import ErrorBody, WriteModel
from controlplane.api.streaming import FollowResponse
from controlplane.domain.fields import FLOW_ID_PATTERN, NAMESPACE_PATTERN, State
from controlplane.domain.transitions import TERMINAL
from controlplane.services import executions as service
from controlplane.services import lineage, log_follow
from controlplane.services.access import Principal
from controlplane.services.log_follow import End, FollowLimitError, notifier_of
from controlplane.services.masking import (
    SecretFields,
    mask_sealed,
    secret_fields_by_revision,
    secret_fields_of,
)
from controlplane.store import executions as store
from controlplane.store.db import as_utc
from controlplane.store.tables import ExecutionRow, LogRow, TaskRunRow

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 404, 409, 422)
}
ExecutionId = Annotated[Text, Path(max_length=100)]
# A log line's position: the database's row number, so at most a BIGINT.
Position = Annotated[int, Query(ge=0, le=MAX_DB_INT)]


class ExecutionCreate(WriteModel):
    """Inputs and labels of a new run."""

    inputs: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class ResumeBody(WriteModel):
    """Values for the Pause task's ``onResume`` inputs."""

    inputs: dict[str, Any] = Field(default_factory=dict)


class BackfillBody(WriteModel):
    """The Schedule trigger to replay, and the past interval (both ends included)."""

    trigger_id: str = Field(max_length=100)
    start: datetime
    end: datetime


class TaskRunPublic(BaseModel):
    """One task run."""

    id: str
    task_id: str
    type: str
    parent_id: str | None
    value: str | None
    attempt: int
    state: str
    outputs: dict[str, Any]
    resumed_by: str | None
    resumed_at: datetime | None
    started_at: datetime
    ended_at: datetime | None

    @classmethod
    def of(cls, row: TaskRunRow, secrets: SecretFields) -> TaskRunPublic:
        """Build from a stored task run, SECRET resume inputs masked."""
        return cls(
            id=row.id,
            task_id=row.task_id,
            type=row.task_type,
            parent_id=row.parent_id,
            value=row.value,
            attempt=row.attempt,
            state=row.state,
            outputs=secrets.mask_outputs(row.task_id, row.outputs),
            resumed_by=row.resumed_by,
            resumed_at=as_utc(row.resumed_at) if row.resumed_at else None,
            started_at=as_utc(row.started_at),
            ended_at=as_utc(row.ended_at) if row.ended_at else None,
        )


class ExecutionPublic(BaseModel):
    """A run, with the lineage copied from its revision at creation."""

    id: str
    namespace: str
    flow_id: str
    flow_revision: int
    git_commit_sha: str | None
    plan_id: str | None
    origin: str
    trigger: dict[str, Any]
    inputs: dict[str, Any]
    labels: dict[str, Any]
    outputs: dict[str, Any]
    state: str
    state_history: list[dict[str, Any]]
    created_at: datetime
    ended_at: datetime | None
    task_runs: list[TaskRunPublic] | None = None

    @classmethod
    def of(
        cls, row: ExecutionRow, secrets: SecretFields, runs: list[TaskRunRow] | None = None
    ) -> ExecutionPublic:
        """Build from a stored execution, SECRET inputs masked."""
        return cls(
            id=row.id,
            namespace=row.namespace,
            flow_id=row.flow_id,
            flow_revision=row.flow_revision,
            git_commit_sha=row.git_commit_sha,
            plan_id=row.plan_id,
            origin=row.origin,
            trigger=row.trigger,
            inputs=secrets.mask_inputs(row.inputs),
            labels=row.labels,
            outputs=mask_sealed(row.outputs),
            state=row.state,
            state_history=row.state_history,
            created_at=as_utc(row.created_at),
            ended_at=as_utc(row.ended_at) if row.ended_at else None,
            task_runs=None if runs is None else [TaskRunPublic.of(r, secrets) for r in runs],
        )


def _public(
    engine: Engine, row: ExecutionRow, runs: list[TaskRunRow] | None = None
) -> ExecutionPublic:
    """The API view of a run: values typed SECRET are masked, never sent."""
    return ExecutionPublic.of(row, secret_fields_of(engine, row), runs)


class LogLine(BaseModel):
    """One log line."""

    position: int
    task_id: str | None
    level: str
    message: str
    timestamp: datetime

    @classmethod
    def of(cls, row: LogRow) -> LogLine:
        """Build from a stored log line."""
        return cls(
            position=row.pk or 0,
            task_id=row.task_id,
            level=row.level,
            message=row.message,
            timestamp=as_utc(row.timestamp),
        )


@router.get("", response_model=list[ExecutionPublic])
def list_executions(
    engine: EngineDep,
    principal: Viewer,
    page: PageDep,
    namespace: Text | None = None,
    flow_id: Text | None = None,
    state: State | None = None,
) -> list[ExecutionPublic]:
    """Runs, newest first."""
    with Session(engine) as session:
        rows = store.list_executions(
            session,
            namespace=namespace,
            flow_id=flow_id,
            state=state.value if state else None,
            offset=page.offset,
            limit=page.limit,
            scopes=principal.scopes,
        )
        secrets = secret_fields_by_revision(session, (r.revision_pk for r in rows))
    return [ExecutionPublic.of(r, secrets[r.revision_pk]) for r in rows]


def _visible(engine: EngineDep, principal: Principal, execution_id: str) -> service.ExecutionDetail:
    """The execution, or 404 when missing and 403 when outside the caller's scopes."""
    detail = service.get_execution(engine, execution_id)
    principal.check_namespace(detail.execution.namespace)
    return detail


@router.get("/{execution_id}", response_model=ExecutionPublic, responses=_ERRORS)
def get_execution(
    engine: EngineDep, principal: Viewer, execution_id: ExecutionId
) -> ExecutionPublic:
    """A run with its task runs."""
    detail = _visible(engine, principal, execution_id)
    return _public(engine, detail.execution, list(detail.task_runs))


@router.get(
    "/{execution_id}/logs",
    response_model=list[LogLine],
    responses={
        **_ERRORS,
        200: {
            "description": "Up to `limit` lines after `after`, oldest first. When more may "
            'follow, `Link: <…?after=N&limit=L>; rel="next"` and `X-Next-After: N` name the '
            "next page; the last page has neither.",
            "headers": {
                "Link": {"schema": {"type": "string"}, "description": "rel=next page"},
                "X-Next-After": {"schema": {"type": "integer"}, "description": "next `after`"},
            },
        },
    },
)
def get_logs(
    request: Request,
    engine: EngineDep,
    principal: Viewer,
    execution_id: ExecutionId,
    response: Response,
    after: Annotated[int, Query(ge=0, le=MAX_DB_INT, description="Lines after this position")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Lines per page")] = 1000,
) -> list[LogLine]:
    """A page of log lines after position ``after``; page on with the ``next`` link."""
    _visible(engine, principal, execution_id)
    rows = log_follow.read_logs(engine, execution_id, after=after, limit=limit)
    if len(rows) == limit:
        cursor = rows[-1].pk or after
        following = request.url.include_query_params(after=cursor, limit=limit)
        response.headers["Link"] = f'<{following}>; rel="next"'
        response.headers["X-Next-After"] = str(cursor)
    return [LogLine.of(r) for r in rows]


@router.get("/{execution_id}/lineage", responses=_ERRORS)
def get_lineage(engine: EngineDep, principal: Viewer, execution_id: ExecutionId) -> dict[str, Any]:
    """Everything an auditor needs to trace this run: revision, commit, plan, approvals."""
    _visible(engine, principal, execution_id)
    return lineage.execution_lineage(engine, execution_id)


@router.post("/{execution_id}/resume", response_model=ExecutionPublic, responses=_ERRORS)
def resume_execution(
    engine: EngineDep, principal: Reviewer, execution_id: ExecutionId, body: ResumeBody
) -> ExecutionPublic:
    """Resume a paused run once; who resumed it and when is recorded on the Pause task run."""
    _visible(engine, principal, execution_id)
    row = service.resume_execution(engine, execution_id, actor=principal.actor, inputs=body.inputs)
    return _public(engine, row)


@router.post("/{execution_id}/kill", response_model=ExecutionPublic, responses=_ERRORS)
def kill_execution(
    engine: EngineDep, principal: Editor, execution_id: ExecutionId
) -> ExecutionPublic:
    """Kill a run."""
    _visible(engine, principal, execution_id)
    return _public(engine, service.kill_execution(engine, execution_id, actor=principal.actor))


@router.post("/{execution_id}/restart", response_model=ExecutionPublic, responses=_ERRORS)
def restart_execution(
    engine: EngineDep, principal: Editor, execution_id: ExecutionId
) -> ExecutionPublic:
    """Run a FAILED, KILLED or WARNING run again from its unsuccessful tasks, same revision."""
    _visible(engine, principal, execution_id)
    return _public(engine, service.restart_execution(engine, execution_id, actor=principal.actor))


# Idle followers get an SSE comment this often (proxies keep the stream open).
_KEEPALIVE_SECONDS = 15.0


@router.get(
    "/{execution_id}/logs/follow",
    response_class=StreamingResponse,
    responses={
        **_ERRORS,
        200: {
            "description": "Server-sent events: one `log` event per line (its `id` is the "
            "line's position), then one `end` event with the final state. A follower that "
            "falls too far behind gets a `reconnect` event instead: reconnect with "
            "`Last-Event-ID`. Idle streams get a `: keep-alive` comment every 15 s",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        429: {"model": ErrorBody, "description": "The token already follows its maximum"},
    },
)
async def follow_logs(
    request: Request,
    engine: EngineDep,
    principal: Viewer,
    execution_id: ExecutionId,
    after: Position = 0,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=MAX_DB_INT)] = None,
) -> Response:
    """Stream the run's log lines after ``after`` (or ``Last-Event-ID``) until it ends.

    Every follower is served from one poller per execution on the event loop:
    no thread is held while waiting. A token may hold a bounded number of
    followers at once (429 past it); a disconnect gives the slot back.
    """
    await run_in_threadpool(_visible, engine, principal, execution_id)
    notifier = notifier_of(request.app.state)
    owner = principal.token_id or f"{principal.via}:{principal.name}"
    try:
        release = notifier.acquire(owner)
    except FollowLimitError:
        # One error table: TooManyRequestsError answers 429 with Retry-After.
        raise FollowLimitError(
            f"{principal.name!r} already follows {notifier.per_owner} log streams; close one first"
        ) from None
    start = last_event_id if last_event_id is not None else after

    async def events() -> AsyncIterator[str]:
        follow = notifier.follow(execution_id, after=start, keepalive=_KEEPALIVE_SECONDS)
        async for item in follow:
            if item is None:
                yield ": keep-alive\n\n"
            elif isinstance(item, End):
                kind = "end" if item.reason == "ended" else "reconnect"
                body = {"state": item.state} if kind == "end" else {"reason": item.reason}
                yield f"event: {kind}\ndata: {json.dumps(body)}\n\n"
            else:
                data = LogLine.of(item).model_dump_json()
                yield f"id: {item.pk}\nevent: log\ndata: {data}\n\n"

    return FollowResponse(events(), release)


@router.post(
    "/webhook/{namespace}/{flow_id}/{key}",
    response_model=ExecutionPublic,
    status_code=201,
    responses=_ERRORS,
)
async def webhook(
    request: Request,
    engine: EngineDep,
    namespace: Annotated[str, Path(pattern=NAMESPACE_PATTERN)],
    flow_id: Annotated[str, Path(pattern=FLOW_ID_PATTERN)],
    key: Annotated[Text, Path(max_length=256)],
) -> ExecutionPublic:
    """Start a run from the flow's Webhook trigger; the JSON (or text) body is ``trigger.body``."""
    raw = await request.body()
    text = raw.decode("utf-8", errors="replace")
    try:
        body: Any = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        body = text
    payload = {
        "body": body,
        "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
        "parameters": dict(request.query_params),
    }
    # Database work runs in the thread pool: a SQLite write can wait on the lock.
    row = await run_in_threadpool(service.trigger_webhook, engine, namespace, flow_id, key, payload)
    return await run_in_threadpool(_public, engine, row)


@router.post(
    "/{namespace}/{flow_id}/backfill",
    response_model=list[ExecutionPublic],
    status_code=201,
    responses=_ERRORS,
)
def backfill(
    engine: EngineDep,
    principal: Editor,
    namespace: Annotated[str, Path(pattern=NAMESPACE_PATTERN)],
    flow_id: Annotated[str, Path(pattern=FLOW_ID_PATTERN)],
    body: BackfillBody,
) -> list[ExecutionPublic]:
    """Queue the runs a Schedule trigger would have fired in a past interval, each once ever."""
    principal.check_namespace(namespace)
    rows = service.backfill_schedule(
        engine,
        namespace,
        flow_id,
        body.trigger_id,
        start=body.start,
        end=body.end,
        actor=principal.actor,
    )
    return [_public(engine, row) for row in rows]


# Registered last: `/{namespace}/{flow_id}` would otherwise swallow `/{id}/resume`.
@router.post(
    "/{namespace}/{flow_id}", response_model=ExecutionPublic, status_code=201, responses=_ERRORS
)
async def create_execution(
    engine: EngineDep,
    principal: Editor,
    namespace: Annotated[str, Path(pattern=NAMESPACE_PATTERN)],
    flow_id: Annotated[str, Path(pattern=FLOW_ID_PATTERN)],
    body: ExecutionCreate,
    wait: Annotated[bool, Query(description="Answer once the run ends (or pauses)")] = False,
    wait_seconds: Annotated[
        float, Query(alias="timeout", gt=0, le=600, description="Seconds to wait")
    ] = 60,
) -> ExecutionPublic:
    """Queue a run of the flow's active revision; with ``wait``, answer when it stops."""
    principal.check_namespace(namespace)
    # Database work runs in the thread pool, so a wait never stalls the event loop.
    row = await run_in_threadpool(
        partial(
            service.create_execution,
            engine,
            namespace,
            flow_id,
            inputs=body.inputs,
            labels=body.labels,
            trigger={"type": "api", "actor": principal.actor},
        )
    )
    deadline = time.monotonic() + (wait_seconds if wait else 0)
    while True:
        detail = await run_in_threadpool(service.get_execution, engine, row.id)
        stopped = State(detail.execution.state) in TERMINAL | {State.PAUSED}
        if stopped or time.monotonic() >= deadline:
            return await run_in_threadpool(
                _public, engine, detail.execution, list(detail.task_runs)
            )
        await asyncio.sleep(0.05)
