"""``/api/v1/sources`` and ``/api/v1/plans``: Git sources, their plans and reviews.

Authorize before acting: every route checks the caller against every
namespace the operation touches before anything is written. A source belongs
to the namespaces its flows live in; a scoped token sees a source when one of
them is in its scopes, and syncs or rolls it back only when all of them (and
all the plan touches) are. Changing a source's definition needs a token
scoped to ``*``: the poller acts on it later, for no caller.
"""

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
)
from controlplane.api.deps import EngineDep, IfMatch, SettingsDep, get_keyring
from controlplane.api.limits import Text
from controlplane.api.schemas import ErrorBody, WriteModel
from controlplane.errors import ForbiddenError, InvalidRequestError, NotFoundError
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
    take_over: bool = Field(
        default=False,
        description="A flow another origin owns: false makes it a plan problem, "
        "true an explicit take_over action in the plan",
    )


class SourcePatch(WriteModel):
    """Some fields of a Git source; the others keep their values."""

    url: Annotated[str | None, Field(min_length=1)] = None
    branch: str | None = None
    flows_path: str | None = None
    secrets_path: str | None = None
    poll_interval_seconds: Annotated[int | None, Field(ge=5, le=86_400)] = None
    webhook_secret: str | None = Field(default=None, description="null removes the secret")
    approval: Literal["auto", "approval"] | None = None
    required_approvals: Annotated[int | None, Field(ge=1, le=10)] = None
    prune: bool | None = None
    self_heal: bool | None = None
    take_over: bool | None = None


class SourcePublic(BaseModel):
    """A Git source as the API shows it (no webhook secret, no URL credentials)."""

    id: str
    url: str = Field(description="Without credentials: those are sealed, never shown")
    has_url_credentials: bool
    namespaces: list[str] = Field(description="The namespaces its flows live in")
    branch: str
    flows_path: str
    secrets_path: str
    poll_interval_seconds: int
    has_webhook_secret: bool
    approval: str
    required_approvals: int
    prune: bool
    self_heal: bool
    take_over: bool
    last_commit: str | None
    version: int

    @classmethod
    def of(cls, row: GitSourceRow) -> SourcePublic:
        """Build from a stored source."""
        data = row.model_dump(
            exclude={
                "webhook_secret",
                "webhook_secret_ciphertext",
                "url_credentials_ciphertext",
                "created_at",
                "updated_at",
                "deleted_at",
                "url",
            }
        )
        return cls(
            **data,
            url=sources.display_url(row.url),
            has_url_credentials=row.url_credentials_ciphertext is not None,
            has_webhook_secret=sources.has_webhook_secret(row),
        )


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


class ProgressPublic(BaseModel):
    """How far the review is: approvals so far out of those required."""

    required: int
    approvals: int


class CommitIdentityPublic(BaseModel):
    """The author and committer of one commit the plan brings."""

    sha: str
    author: str
    author_email: str
    committer: str
    committer_email: str


class PlanPublic(BaseModel):
    """A plan, its changes and problems, and its reviews."""

    id: str
    source_id: str
    kind: str = Field(description="sync, heal (self_heal), rollback or local (--watch)")
    requested_by: str | None = Field(description="Who asked for a rollback")
    created_by: str | None = Field(description="Who asked for the plan (git: the poller)")
    status_reason: str | None = Field(description="Why it failed or was superseded")
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
    progress: ProgressPublic
    commits: list[CommitIdentityPublic] = Field(
        description="Every commit the plan brings; none of their authors or committers "
        "may approve it"
    )

    @classmethod
    def of(cls, row: PlanRow, approvals: list[ApprovalRow], required: int = 1) -> PlanPublic:
        """Build from a stored plan, its approvals and the approvals its source requires."""
        return cls(
            **row.model_dump(
                exclude={
                    "author_email",
                    "created_at",
                    "decided_at",
                    "dedup_key",
                    "secret_payload",  # sealed values are for apply alone
                    "basis",
                    "commit_identities",
                }
            ),
            progress=ProgressPublic(
                required=required,
                approvals=sum(1 for a in approvals if a.decision == "approve"),
            ),
            commits=[CommitIdentityPublic(**c) for c in row.commit_identities],
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
        source = session.get(GitSourceRow, row.source_id)
        required = source.required_approvals if source is not None else 1
        return PlanPublic.of(row, list(approvals), required)


def _visible_source(engine: Any, source_id: str, principal: Principal) -> GitSourceRow:
    """The source, or 403 when none of its namespaces is in the caller's scopes."""
    row = sources.get_source(engine, source_id)
    if not principal.can_see_any(row.namespaces):
        raise ForbiddenError(
            f"Git source {source_id} serves namespaces outside {principal.name!r}'s scopes"
        )
    return row


def _authorizer(principal: Principal, what: str) -> plans.Authorize:
    def authorize(namespaces: Any) -> None:
        principal.check_all(set(namespaces), what)

    return authorize


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
    """Create or **replace the whole** Git source.

    Every field left out takes its default (``approval: auto``, no webhook
    secret, ...), even when the source had another value: use PATCH to change
    some fields. The ``Flowplane-Defaulted`` header names the fields that took
    their default. Credentials in the URL (``https://user:token@host/...``) are
    taken out of it and stored encrypted like the webhook secret, never shown.
    """
    check_unscoped(principal, "a Git source")
    if body.url.startswith(plans.LOCAL_SCHEME):
        raise InvalidRequestError("local: sources are made by `flowplane server --watch DIR`")
    row, created = sources.put_source(
        engine,
        source_id,
        sources.SourceInput(**body.model_dump()),
        if_match=if_match,
        actor=principal.actor,
        keyring=get_keyring(request),
        sent=body.model_fields_set,
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["ETag"] = sources.source_etag(row)
    defaulted = sorted(set(SourceWrite.model_fields) - body.model_fields_set)
    if defaulted:
        response.headers["Flowplane-Defaulted"] = ", ".join(defaulted)
    return SourcePublic.of(row)


@router.patch("/sources/{source_id}", response_model=SourcePublic, responses=_ERRORS)
def patch_source(
    request: Request,
    engine: EngineDep,
    principal: Admin,
    source_id: SourceId,
    body: SourcePatch,
    response: Response,
    if_match: IfMatch = None,
) -> SourcePublic:
    """Change only the fields sent; the others keep theirs. ``webhook_secret: null`` removes it."""
    check_unscoped(principal, "a Git source")
    changes = body.model_dump(exclude_unset=True)
    nulls = sorted(k for k, v in changes.items() if v is None and k != "webhook_secret")
    if nulls:
        raise InvalidRequestError(f"only webhook_secret may be null; not {nulls}")
    if str(changes.get("url", "")).startswith(plans.LOCAL_SCHEME):
        raise InvalidRequestError("local: sources are made by `flowplane server --watch DIR`")
    row = sources.patch_source(
        engine,
        source_id,
        changes,
        actor=principal.actor,
        keyring=get_keyring(request),
        if_match=if_match,
    )
    response.headers["ETag"] = sources.source_etag(row)
    return SourcePublic.of(row)


@router.get("/sources", response_model=list[SourcePublic])
def list_sources(engine: EngineDep, principal: Viewer) -> list[SourcePublic]:
    """The Git sources serving a namespace in the caller's scopes (every one for ``*``)."""
    return [
        SourcePublic.of(r)
        for r in sources.list_sources(engine)
        if principal.can_see_any(r.namespaces)
    ]


@router.get("/sources/{source_id}", response_model=SourcePublic, responses=_ERRORS)
def get_source(
    engine: EngineDep, principal: Viewer, source_id: SourceId, response: Response
) -> SourcePublic:
    """One Git source."""
    row = _visible_source(engine, source_id, principal)
    response.headers["ETag"] = sources.source_etag(row)
    return SourcePublic.of(row)


@router.delete("/sources/{source_id}", status_code=204, responses=_ERRORS)
def delete_source(
    engine: EngineDep, principal: Admin, source_id: SourceId, if_match: IfMatch = None
) -> Response:
    """Stop syncing a source. Its flows stay active and are released to other writers."""
    check_unscoped(principal, "a Git source")
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
    """Read the branch now and plan it (applied at once under the ``auto`` policy).

    403 before anything is stored unless every namespace the source serves and
    the plan touches is in the caller's scopes.
    """
    _visible_source(engine, source_id, principal)
    plan = plans.sync_source(
        engine,
        source_id,
        settings.data_dir.resolve() / "git",
        keyring=get_keyring(request),
        actor=principal.actor,
        authorize=_authorizer(principal, "this sync"),
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


@router.get("/sources/{source_id}/drift", response_model=DriftPublic, responses=_ERRORS)
def source_drift(
    request: Request,
    engine: EngineDep,
    principal: Viewer,
    settings: SettingsDep,
    source_id: SourceId,
) -> DriftPublic:
    """Compare the tree of the last applied commit with the flows live now (in-scope flows only)."""
    _visible_source(engine, source_id, principal)
    report = drift.source_drift(
        engine,
        source_id,
        settings.data_dir.resolve() / "git",
        keyring=get_keyring(request),
        visible=principal.can_see,
    )
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
    """Plan an older commit's tree through the approval policy; its requester cannot approve.

    403 before anything is stored unless every namespace the rollback touches is in scope.
    """
    _visible_source(engine, source_id, principal)
    plan = plans.rollback_source(
        engine,
        source_id,
        body.commit,
        settings.data_dir.resolve() / "git",
        actor=principal.actor,
        keyring=get_keyring(request),
        authorize=_authorizer(principal, "this rollback"),
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
    plans.decide_plan(
        engine,
        plan_id,
        actor=principal.actor,
        approve=approve,
        comment=body.comment,
        identities=principal.identities,
    )
    return _plan_public(engine, plan_id, principal)


@router.post("/plans/{plan_id}/approve", response_model=PlanPublic, responses=_ERRORS)
def approve_plan(
    engine: EngineDep, principal: Reviewer, plan_id: PlanId, body: Decision
) -> PlanPublic:
    """Approve; no author or committer of the plan's commits can. Enough approvals apply it."""
    return _review(engine, plan_id, principal, body, approve=True)


@router.post("/plans/{plan_id}/reject", response_model=PlanPublic, responses=_ERRORS)
def reject_plan(
    engine: EngineDep, principal: Reviewer, plan_id: PlanId, body: Decision
) -> PlanPublic:
    """Reject; nothing activates."""
    return _review(engine, plan_id, principal, body, approve=False)
