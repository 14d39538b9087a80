"""Git sources: last commit, sync status and drift; Sync now and rollback to a chosen commit.

Sync and rollback go through the same services and the same policy as the API:
the caller must hold every namespace the source serves and the plan touches
(checked by the service's ``authorize`` hook before anything is stored), and a
rollback plan follows the source's approval policy, its requester excluded.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import Session, col, select
from starlette.responses import RedirectResponse, Response

from controlplane.api.errors import status_for
from controlplane.errors import FlowplaneError, ForbiddenError, InvalidRequestError
from controlplane.services.access import Principal
from controlplane.services.gitops import drift, plans, sources
from controlplane.services.gitops.drift import DriftReport
from controlplane.services.lineage import commit_link
from controlplane.services.secrets import Keyring
from controlplane.store.tables import GitSourceRow, PlanRow
from controlplane.ui.identity import Editor, Viewer, engine_of, settings_of
from controlplane.ui.rendering import page

router = APIRouter()
_RECENT_PLANS = 10
_SHA_CHARS = set("0123456789abcdef")


@dataclass(frozen=True)
class SourceView:
    """A source as the page shows it: no credentials, its last plan and commit link."""

    row: GitSourceRow
    url: str
    last_plan: PlanRow | None
    commit_url: str | None


def _keyring(request: Request) -> Keyring:
    keyring: Keyring = request.app.state.host.keyring
    return keyring


def _cache(request: Request) -> Path:
    return settings_of(request).data_dir.resolve() / "git"


def _visible(request: Request, principal: Principal, source_id: str) -> GitSourceRow:
    row = sources.get_source(engine_of(request), source_id)
    if not principal.can_see_any(row.namespaces):
        raise ForbiddenError(
            f"Git source {source_id} serves namespaces outside {principal.name!r}'s scopes"
        )
    return row


def _view(request: Request, row: GitSourceRow) -> SourceView:
    with Session(engine_of(request)) as session:
        last = session.exec(
            select(PlanRow)
            .where(col(PlanRow.source_id) == row.id)
            .order_by(col(PlanRow.created_at).desc())
        ).first()
    link = commit_link(row.url, row.last_commit) if row.last_commit else None
    return SourceView(row, sources.display_url(row.url), last, link)


@router.get("/sources")
def source_list(request: Request, principal: Viewer) -> Response:
    """The sources serving a namespace the principal sees, each with its sync status."""
    rows = [
        r for r in sources.list_sources(engine_of(request)) if principal.can_see_any(r.namespaces)
    ]
    context = {"nav": "sources", "sources": [_view(request, row) for row in rows]}
    return page(request, "sources.html", context)


def _source_page(
    request: Request,
    principal: Principal,
    row: GitSourceRow,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    engine = engine_of(request)
    with Session(engine) as session:
        recent = session.exec(
            select(PlanRow)
            .where(col(PlanRow.source_id) == row.id)
            .order_by(col(PlanRow.created_at).desc())
            .limit(_RECENT_PLANS)
        ).all()
        applied = session.exec(
            select(PlanRow)
            .where(col(PlanRow.source_id) == row.id, col(PlanRow.status) == plans.APPLIED)
            .order_by(col(PlanRow.created_at).desc())
        ).all()
    report: DriftReport | None = None
    drift_error = None
    if not plans.is_local(row):
        try:
            report = drift.source_drift(
                engine,
                row.id,
                _cache(request),
                keyring=_keyring(request),
                visible=principal.can_see,
            )
        except FlowplaneError as exc:
            drift_error = str(exc)
    # Rollback targets: commits applied before, newest first, once each, not the current one.
    seen: set[str] = set()
    targets = []
    for plan in applied:
        if plan.target_commit != row.last_commit and plan.target_commit not in seen:
            seen.add(plan.target_commit)
            targets.append(plan)
    context = {
        "nav": "sources",
        "source": _view(request, row),
        "plans": recent,
        "targets": targets,
        "drift": report,
        "drift_error": drift_error,
        "error": error,
        "can_operate": principal.has_role("editor") and principal.can_see_all(row.namespaces),
        "commit_url": lambda sha: commit_link(row.url, sha),
    }
    return page(request, "source.html", context, status_code=status_code)


@router.get("/sources/{source_id}")
def source_page(request: Request, principal: Viewer, source_id: str) -> Response:
    """One source: policy, last commit, drift, recent plans, Sync now and rollback."""
    return _source_page(request, principal, _visible(request, principal, source_id))


def _authorizer(principal: Principal, what: str) -> plans.Authorize:
    def authorize(namespaces: Collection[str]) -> None:
        principal.check_all(set(namespaces), what)

    return authorize


def _refused(
    request: Request, principal: Principal, row: GitSourceRow, exc: FlowplaneError
) -> Response:
    if isinstance(exc, ForbiddenError):
        raise exc  # the error page: nothing was stored
    status, _code = status_for(exc)
    fresh = sources.get_source(engine_of(request), row.id)
    return _source_page(request, principal, fresh, error=str(exc), status_code=status)


@router.post("/sources/{source_id}/sync")
def sync_now(request: Request, principal: Editor, source_id: str) -> Response:
    """Read the branch now and plan it; the browser goes to the plan."""
    row = _visible(request, principal, source_id)
    try:
        plan = plans.sync_source(
            engine_of(request),
            source_id,
            _cache(request),
            keyring=_keyring(request),
            actor=principal.actor,
            authorize=_authorizer(principal, "this sync"),
        )
    except FlowplaneError as exc:
        return _refused(request, principal, row, exc)
    base = str(request.scope.get("root_path", "")).rstrip("/")
    return RedirectResponse(f"{base}/plans/{plan.id}", status_code=303)


@router.post("/sources/{source_id}/rollback")
def rollback(
    request: Request,
    principal: Editor,
    source_id: str,
    commit: Annotated[str, Form(max_length=64)] = "",
    other: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Plan an older commit (chosen from the list, or typed) through the approval policy."""
    row = _visible(request, principal, source_id)
    sha = (other.strip() or commit.strip()).lower()
    try:
        if not 7 <= len(sha) <= 64 or not set(sha) <= _SHA_CHARS:  # noqa: PLR2004 - sha lengths
            raise InvalidRequestError(f"{sha or 'nothing'} is not a commit sha")
        plan = plans.rollback_source(
            engine_of(request),
            source_id,
            sha,
            _cache(request),
            actor=principal.actor,
            keyring=_keyring(request),
            authorize=_authorizer(principal, "this rollback"),
        )
    except FlowplaneError as exc:
        return _refused(request, principal, row, exc)
    base = str(request.scope.get("root_path", "")).rstrip("/")
    return RedirectResponse(f"{base}/plans/{plan.id}", status_code=303)
