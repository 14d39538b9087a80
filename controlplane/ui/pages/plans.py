"""Plans: the list, one plan's diff and problems, and the reviewer's approve/reject."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from controlplane.errors import ConflictError, ForbiddenError, NotFoundError
from controlplane.services.access import Principal
from controlplane.services.gitops import plans as plan_service
from controlplane.services.lineage import commit_link
from controlplane.store.tables import PlanRow
from controlplane.ui import listing, queries
from controlplane.ui.identity import Reviewer, Viewer, engine_of
from controlplane.ui.plan_view import field_rows, split_rows
from controlplane.ui.rendering import page

router = APIRouter()
_STATUSES = ("pending", "approved", "applied", "rejected", "failed", "superseded", "no_changes")


def _visible_plan(request: Request, principal: Principal, plan_id: str) -> PlanRow:
    plan = queries.get_plan(engine_of(request), plan_id)
    if plan is None:
        raise NotFoundError(f"plan {plan_id} does not exist")
    if not queries.can_see_plan(principal, plan):
        raise ForbiddenError(f"plan {plan_id} touches namespaces outside {principal.name}'s scopes")
    return plan


Short = Annotated[str, Query(max_length=200)]


@router.get("/plans")
def plan_list(
    request: Request,
    principal: Viewer,
    *,
    status: Short = "",
    source: Short = "",
    q: Short = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    """Plans, newest first: by status, source prefix, text and days, a page at a time."""
    days = listing.DateRange(listing.parse_day(since), listing.parse_day(until))
    flt = listing.PlanFilter(status=status, source=source, q=q, days=days)
    result = listing.plan_page(engine_of(request), principal, flt, page_number)
    context = {
        "nav": "plans",
        "page": result,
        "filters": {"status": status, "source": source, "q": q, "since": since, "until": until},
        "statuses": _STATUSES,
    }
    return page(request, "plans.html", context)


def _plan_page(
    request: Request,
    principal: Principal,
    plan: PlanRow,
    *,
    error: str | None = None,
    comment: str = "",
    status_code: int = 200,
) -> Response:
    approvals = queries.approvals_of(engine_of(request), plan.id)
    url = queries.source_urls(engine_of(request)).get(plan.source_id)
    split = request.query_params.get("view") == "split"
    changes = [
        {
            **c,
            "field_rows": field_rows(c),
            "split_rows": split_rows(c.get("text_diff") or "") if split else [],
        }
        for c in plan.changes
        if c.get("action") != "unchanged"
    ]
    context = {
        "nav": "plans",
        "plan": plan,
        "changes": changes,
        "split": split,
        "commit_url": commit_link(url, plan.target_commit) if url else None,
        "unchanged": [c for c in plan.changes if c.get("action") == "unchanged"],
        "secret_changes": queries.secret_changes(plan),
        "approvals": approvals,
        "can_review": principal.has_role("reviewer") and plan.status == "pending",
        "own_commit": plan_service.writer_match(plan, principal.actor, principal.identities)
        is not None,
        "already_decided": any(a.actor.casefold() == principal.actor.casefold() for a in approvals),
        "progress": plan_service.review_progress(engine_of(request), plan.id),
        "approvers": [a for a in approvals if a.decision == "approve"],
        "error": error,
        "comment": comment,
    }
    return page(request, "plan.html", context, status_code=status_code)


@router.get("/plans/{plan_id}")
def plan_page(request: Request, principal: Viewer, plan_id: str) -> Response:
    """One plan: a coloured diff per flow, secret keys, problems and the reviews so far."""
    return _plan_page(request, principal, _visible_plan(request, principal, plan_id))


def _decide(
    request: Request, principal: Principal, plan_id: str, comment: str, *, approve: bool
) -> Response:
    plan = _visible_plan(request, principal, plan_id)
    try:
        plan_service.decide_plan(
            engine_of(request),
            plan_id,
            actor=principal.actor,
            approve=approve,
            comment=comment.strip() or None,
            identities=principal.identities,
        )
    except (ForbiddenError, ConflictError) as exc:
        # Four-eyes and "already decided" come from the service; show them on the page.
        fresh = queries.get_plan(engine_of(request), plan_id) or plan
        code = 403 if isinstance(exc, ForbiddenError) else 409
        return _plan_page(
            request, principal, fresh, error=str(exc), comment=comment, status_code=code
        )
    base = str(request.scope.get("root_path", "")).rstrip("/")
    return RedirectResponse(f"{base}/plans/{plan_id}", status_code=303)


Comment = Annotated[str, Form(max_length=5000)]


@router.post("/plans/{plan_id}/approve")
def approve(request: Request, principal: Reviewer, plan_id: str, comment: Comment = "") -> Response:
    """Approve as the signed-in reviewer; enough approvals apply the plan."""
    return _decide(request, principal, plan_id, comment, approve=True)


@router.post("/plans/{plan_id}/reject")
def reject(request: Request, principal: Reviewer, plan_id: str, comment: Comment = "") -> Response:
    """Reject as the signed-in reviewer; nothing activates."""
    return _decide(request, principal, plan_id, comment, approve=False)
