"""``/api/v1/sources`` and ``/api/v1/plans``: Git sources, their plans and reviews."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Request, Response, status
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from controlplane.api.deps import EngineDep, IfMatch, SettingsDep
from controlplane.api.schemas import ErrorBody, WriteModel
from controlplane.errors import InvalidRequestError, NotFoundError
from controlplane.services.gitops import plans, sources, webhooks
from controlplane.store.db import as_utc
from controlplane.store.tables import ApprovalRow, GitSourceRow, PlanRow

router = APIRouter(prefix="/api/v1", tags=["gitops"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 403, 404, 409, 412, 422, 502)
}
SourceId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)]
Actor = Annotated[str | None, Header(alias="X-Flowplane-Actor", max_length=200)]


class SourceWrite(WriteModel):
    """A Git source; ``webhook_secret`` is write-only and never returned."""

    url: Annotated[str, Field(min_length=1, description="file://, https:// or ssh URL")]
    branch: str = "main"
    flows_path: str = "flows/"
    secrets_path: str = "secrets/"
    poll_interval_seconds: Annotated[int, Field(ge=5, le=86_400)] = 60
    webhook_secret: str | None = None
    approval: Literal["auto", "approval"] = "auto"
    required_approvals: Annotated[int, Field(ge=1, le=10)] = 1
    prune: bool = False
    self_heal: bool = False


class SourcePublic(BaseModel):
    """A Git source as the API shows it (no webhook secret)."""

    id: str
    url: str
    branch: str
    flows_path: str
    secrets_path: str
    poll_interval_seconds: int
    has_webhook_secret: bool
    approval: str
    required_approvals: int
    prune: bool
    self_heal: bool
    last_commit: str | None
    version: int

    @classmethod
    def of(cls, row: GitSourceRow) -> SourcePublic:
        """Build from a stored source."""
        data = row.model_dump(exclude={"webhook_secret", "created_at", "updated_at"})
        return cls(**data, has_webhook_secret=bool(row.webhook_secret))


class ApprovalPublic(BaseModel):
    """A reviewer's decision."""

    actor: str
    decision: str
    comment: str | None
    decided_at: datetime


class PlanPublic(BaseModel):
    """A plan, its changes and problems, and its reviews."""

    id: str
    source_id: str
    base_commit: str | None
    target_commit: str
    author: str | None
    committer: str | None
    message: str | None
    status: str
    summary: dict[str, Any]
    changes: list[dict[str, Any]]
    problems: list[dict[str, Any]]
    text: str
    created_at: datetime
    decided_at: datetime | None
    approvals: list[ApprovalPublic]

    @classmethod
    def of(cls, row: PlanRow, approvals: list[ApprovalRow]) -> PlanPublic:
        """Build from a stored plan and its approvals."""
        return cls(
            **row.model_dump(exclude={"author_email", "created_at", "decided_at"}),
            created_at=as_utc(row.created_at),
            decided_at=as_utc(row.decided_at) if row.decided_at else None,
            approvals=[
                ApprovalPublic(
                    actor=a.actor,
                    decision=a.decision,
                    comment=a.comment,
                    decided_at=as_utc(a.decided_at),
                )
                for a in approvals
            ],
        )


class Decision(WriteModel):
    """A review comment."""

    comment: str | None = None


def _plan_public(engine: Any, plan_id: str) -> PlanPublic:
    with Session(engine) as session:
        row = session.get(PlanRow, plan_id)
        if row is None:
            raise NotFoundError(f"plan {plan_id} does not exist")
        approvals = session.exec(
            select(ApprovalRow).where(col(ApprovalRow.plan_id) == plan_id)
        ).all()
        return PlanPublic.of(row, list(approvals))


@router.put("/sources/{source_id}", response_model=SourcePublic, responses=_ERRORS)
def put_source(
    engine: EngineDep,
    source_id: SourceId,
    body: SourceWrite,
    response: Response,
    if_match: IfMatch = None,
) -> SourcePublic:
    """Create or replace a Git source."""
    row, created = sources.put_source(
        engine, source_id, sources.SourceInput(**body.model_dump()), if_match=if_match
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["ETag"] = sources.source_etag(row)
    return SourcePublic.of(row)


@router.get("/sources", response_model=list[SourcePublic])
def list_sources(engine: EngineDep) -> list[SourcePublic]:
    """Every Git source."""
    return [SourcePublic.of(r) for r in sources.list_sources(engine)]


@router.get("/sources/{source_id}", response_model=SourcePublic, responses=_ERRORS)
def get_source(engine: EngineDep, source_id: SourceId, response: Response) -> SourcePublic:
    """One Git source."""
    row = sources.get_source(engine, source_id)
    response.headers["ETag"] = sources.source_etag(row)
    return SourcePublic.of(row)


@router.post("/sources/{source_id}/sync", response_model=PlanPublic, responses=_ERRORS)
def sync_source(engine: EngineDep, settings: SettingsDep, source_id: SourceId) -> PlanPublic:
    """Read the branch now and plan it (applied at once under the ``auto`` policy)."""
    plan = plans.sync_source(engine, source_id, settings.data_dir.resolve() / "git")
    return _plan_public(engine, plan.id)


class WebhookResult(BaseModel):
    """What a push delivery did."""

    status: str = Field(description="planned, ignored or duplicate")
    reason: str
    plan: PlanPublic | None


@router.post("/sources/{source_id}/webhook", response_model=WebhookResult, responses=_ERRORS)
async def push_webhook(
    request: Request, engine: EngineDep, settings: SettingsDep, source_id: SourceId
) -> WebhookResult:
    """A signed push from GitHub, GitLab or Gitea; a bad signature is 401 and changes nothing."""
    body = await request.body()
    outcome = await run_in_threadpool(
        webhooks.handle_push,
        engine,
        source_id,
        body,
        dict(request.headers),
        settings.data_dir.resolve() / "git",
    )
    plan = _plan_public(engine, outcome.plan.id) if outcome.plan else None
    return WebhookResult(status=outcome.status, reason=outcome.reason, plan=plan)


@router.get("/plans", response_model=list[PlanPublic])
def list_plans(engine: EngineDep, source_id: str | None = None) -> list[PlanPublic]:
    """Plans, newest first."""
    with Session(engine) as session:
        statement = select(PlanRow).order_by(col(PlanRow.created_at).desc()).limit(200)
        if source_id:
            statement = statement.where(col(PlanRow.source_id) == source_id)
        ids = [row.id for row in session.exec(statement)]
    return [_plan_public(engine, plan_id) for plan_id in ids]


@router.get("/plans/{plan_id}", response_model=PlanPublic, responses=_ERRORS)
def get_plan(engine: EngineDep, plan_id: str) -> PlanPublic:
    """One plan with its diff and reviews."""
    return _plan_public(engine, plan_id)


def _review(
    engine: Any, plan_id: str, actor: str | None, body: Decision, *, approve: bool
) -> PlanPublic:
    if not actor:
        raise InvalidRequestError("X-Flowplane-Actor is required to review a plan")
    plans.decide_plan(engine, plan_id, actor=actor, approve=approve, comment=body.comment)
    return _plan_public(engine, plan_id)


@router.post("/plans/{plan_id}/approve", response_model=PlanPublic, responses=_ERRORS)
def approve_plan(
    engine: EngineDep, plan_id: str, body: Decision, actor: Actor = None
) -> PlanPublic:
    """Approve; the commit's author cannot. Enough approvals apply the plan atomically."""
    return _review(engine, plan_id, actor, body, approve=True)


@router.post("/plans/{plan_id}/reject", response_model=PlanPublic, responses=_ERRORS)
def reject_plan(engine: EngineDep, plan_id: str, body: Decision, actor: Actor = None) -> PlanPublic:
    """Reject; nothing activates."""
    return _review(engine, plan_id, actor, body, approve=False)
