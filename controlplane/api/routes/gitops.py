"""``/api/v1/sources`` and ``/api/v1/plans``: Git sources, their plans and reviews."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response, status
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from controlplane.api.auth import (
    Admin,
    Editor,
    Reviewer,
    Viewer,
    check_unscoped,
    require,
)
from controlplane.api.deps import EngineDep, IfMatch, SettingsDep, get_keyring
from controlplane.api.limits import Text
from controlplane.api.schemas import ErrorBody, WriteModel
from controlplane.errors import InvalidRequestError, NotFoundError
from controlplane.services.access import ALL_NAMESPACES, Principal
from controlplane.services.gitops import drift, plans, sources, webhooks
from controlplane.store.db import as_utc
from controlplane.store.tables import ApprovalRow, GitSourceRow, PlanRow

router = APIRouter(prefix="/api/v1", tags=["gitops"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 412, 422, 502)
}
SourceId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)]
PlanId = Annotated[Text, Path(max_length=100)]


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
        data = row.model_dump(
            exclude={"webhook_secret", "webhook_secret_ciphertext", "created_at", "updated_at"}
        )
        return cls(**data, has_webhook_secret=sources.has_webhook_secret(row))


class ApprovalPublic(BaseModel):
    """A reviewer's decision."""

    actor: str
    decision: str
    comment: str | None
    decided_at: datetime


class SecretChangePublic(BaseModel):
    """What a plan does to one namespace secret: the key and the action, never a value."""

    namespace: str
    key: str
    action: Literal["add", "change", "remove", "unchanged"]


class PlanPublic(BaseModel):
    """A plan, its changes and problems, and its reviews."""

    id: str
    source_id: str
    kind: str = Field(description="sync, heal (self_heal), rollback or local (--watch)")
    requested_by: str | None = Field(description="Who asked for a rollback")
    base_commit: str | None
    target_commit: str
    author: str | None
    committer: str | None
    message: str | None
    status: str
    summary: dict[str, Any]
    changes: list[dict[str, Any]]
    secret_changes: list[SecretChangePublic]
    problems: list[dict[str, Any]]
    text: str
    created_at: datetime
    decided_at: datetime | None
    approvals: list[ApprovalPublic]

    @classmethod
    def of(cls, row: PlanRow, approvals: list[ApprovalRow]) -> PlanPublic:
        """Build from a stored plan and its approvals."""
        return cls(
            **row.model_dump(
                exclude={
                    "author_email",
                    "created_at",
                    "decided_at",
                    "dedup_key",
                    "secret_payload",  # sealed values are for apply alone
                }
            ),
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


def _plan_public(engine: Any, plan_id: str, principal: Principal) -> PlanPublic:
    with Session(engine) as session:
        row = session.get(PlanRow, plan_id)
        if row is None:
            raise NotFoundError(f"plan {plan_id} does not exist")
        touched = plans.touched_namespaces(row)
        for namespace in sorted(touched):
            principal.check_namespace(namespace)
        if not touched:
            check_unscoped(principal, "a plan that names no namespace")
        approvals = session.exec(
            select(ApprovalRow).where(col(ApprovalRow.plan_id) == plan_id)
        ).all()
        return PlanPublic.of(row, list(approvals))


@router.put(
    "/sources/{source_id}",
    response_model=SourcePublic,
    responses={201: {"model": SourcePublic}, **_ERRORS},
)
def put_source(
    request: Request,
    engine: EngineDep,
    principal: Admin,
    source_id: SourceId,
    body: SourceWrite,
    response: Response,
    if_match: IfMatch = None,
) -> SourcePublic:
    """Create or replace a Git source; its webhook secret is stored encrypted."""
    if body.url.startswith(plans.LOCAL_SCHEME):
        raise InvalidRequestError("local: sources are made by `flowplane server --watch DIR`")
    row, created = sources.put_source(
        engine,
        source_id,
        sources.SourceInput(**body.model_dump()),
        if_match=if_match,
        actor=principal.actor,
        keyring=get_keyring(request),
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["ETag"] = sources.source_etag(row)
    return SourcePublic.of(row)


@router.get("/sources", response_model=list[SourcePublic], dependencies=[require("viewer")])
def list_sources(engine: EngineDep) -> list[SourcePublic]:
    """Every Git source."""
    return [SourcePublic.of(r) for r in sources.list_sources(engine)]


@router.get(
    "/sources/{source_id}",
    response_model=SourcePublic,
    responses=_ERRORS,
    dependencies=[require("viewer")],
)
def get_source(engine: EngineDep, source_id: SourceId, response: Response) -> SourcePublic:
    """One Git source."""
    row = sources.get_source(engine, source_id)
    response.headers["ETag"] = sources.source_etag(row)
    return SourcePublic.of(row)


@router.delete("/sources/{source_id}", status_code=204, responses=_ERRORS)
def delete_source(
    engine: EngineDep, principal: Admin, source_id: SourceId, if_match: IfMatch = None
) -> Response:
    """Stop syncing a source. Its flows stay active and are released to other writers."""
    sources.delete_source(engine, source_id, actor=principal.actor, if_match=if_match)
    return Response(status_code=204)


@router.post("/sources/{source_id}/sync", response_model=PlanPublic, responses=_ERRORS)
def sync_source(
    request: Request,
    engine: EngineDep,
    principal: Editor,
    settings: SettingsDep,
    source_id: SourceId,
) -> PlanPublic:
    """Read the branch now and plan it (applied at once under the ``auto`` policy)."""
    plan = plans.sync_source(
        engine, source_id, settings.data_dir.resolve() / "git", keyring=get_keyring(request)
    )
    return _plan_public(engine, plan.id, principal)


class DriftItemPublic(BaseModel):
    """One flow that is not as the last applied commit says."""

    namespace: str
    flow_id: str
    kind: Literal["changed", "deleted", "unowned", "extra"]
    detail: str
    live_revision: int | None
    path: str | None


class DriftPublic(BaseModel):
    """How the live flows a source owns differ from its last applied commit."""

    source_id: str
    commit: str | None = Field(description="The last applied commit; null before any")
    self_heal: bool = Field(description="When true, the next sync plans the corrections")
    drifted: bool
    items: list[DriftItemPublic]


@router.get(
    "/sources/{source_id}/drift",
    response_model=DriftPublic,
    responses=_ERRORS,
    dependencies=[require("viewer")],
)
def source_drift(engine: EngineDep, settings: SettingsDep, source_id: SourceId) -> DriftPublic:
    """Compare the tree of the last applied commit with the flows live now."""
    report = drift.source_drift(engine, source_id, settings.data_dir.resolve() / "git")
    return DriftPublic(
        source_id=report.source_id,
        commit=report.commit,
        self_heal=report.self_heal,
        drifted=report.drifted,
        items=[DriftItemPublic(**asdict(item)) for item in report.items],
    )


class RollbackRequest(WriteModel):
    """The older commit of the branch to go back to."""

    commit: Annotated[str, Field(pattern=r"^[0-9a-f]{7,64}$", description="A commit sha")]


@router.post("/sources/{source_id}/rollback", response_model=PlanPublic, responses=_ERRORS)
def rollback_source(
    request: Request,
    engine: EngineDep,
    principal: Editor,
    settings: SettingsDep,
    source_id: SourceId,
    body: RollbackRequest,
) -> PlanPublic:
    """Plan an older commit's tree through the approval policy; its requester cannot approve."""
    plan = plans.rollback_source(
        engine,
        source_id,
        body.commit,
        settings.data_dir.resolve() / "git",
        actor=principal.actor,
        keyring=get_keyring(request),
    )
    return _plan_public(engine, plan.id, principal)


class WebhookResult(BaseModel):
    """What a push delivery did."""

    status: str = Field(description="planned, ignored or duplicate")
    reason: str
    plan: PlanPublic | None


# A verified push signature stands in for a token on the webhook route.
_SIGNED_PUSH = Principal(
    name="webhook", role="viewer", scopes=ALL_NAMESPACES, token_id=None, via="signature"
)


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
        keyring=get_keyring(request),
    )
    plan = (
        await run_in_threadpool(_plan_public, engine, outcome.plan.id, _SIGNED_PUSH)
        if outcome.plan
        else None
    )
    return WebhookResult(status=outcome.status, reason=outcome.reason, plan=plan)


@router.get("/plans", response_model=list[PlanPublic])
def list_plans(
    engine: EngineDep, principal: Viewer, source_id: Text | None = None
) -> list[PlanPublic]:
    """Plans, newest first; a scoped token sees the plans that stay inside its scopes."""
    with Session(engine) as session:
        statement = select(PlanRow).order_by(col(PlanRow.created_at).desc()).limit(200)
        if source_id:
            statement = statement.where(col(PlanRow.source_id) == source_id)
        ids = [
            row.id
            for row in session.exec(statement)
            if principal.can_see_all(plans.touched_namespaces(row))
        ]
    return [_plan_public(engine, plan_id, principal) for plan_id in ids]


@router.get("/plans/{plan_id}", response_model=PlanPublic, responses=_ERRORS)
def get_plan(engine: EngineDep, principal: Viewer, plan_id: PlanId) -> PlanPublic:
    """One plan with its diff and reviews."""
    return _plan_public(engine, plan_id, principal)


def _review(
    engine: Any, plan_id: str, principal: Principal, body: Decision, *, approve: bool
) -> PlanPublic:
    _plan_public(engine, plan_id, principal)  # 404 / 403 before anything changes
    plans.decide_plan(engine, plan_id, actor=principal.actor, approve=approve, comment=body.comment)
    return _plan_public(engine, plan_id, principal)


@router.post("/plans/{plan_id}/approve", response_model=PlanPublic, responses=_ERRORS)
def approve_plan(
    engine: EngineDep, principal: Reviewer, plan_id: PlanId, body: Decision
) -> PlanPublic:
    """Approve; the commit's author cannot. Enough approvals apply the plan atomically."""
    return _review(engine, plan_id, principal, body, approve=True)


@router.post("/plans/{plan_id}/reject", response_model=PlanPublic, responses=_ERRORS)
def reject_plan(
    engine: EngineDep, principal: Reviewer, plan_id: PlanId, body: Decision
) -> PlanPublic:
    """Reject; nothing activates."""
    return _review(engine, plan_id, principal, body, approve=False)
