"""Plans: the list, one plan's diff and problems, and the reviewer's approve/reject."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from controlplane.errors import ConflictError, ForbiddenError, NotFoundError
from controlplane.services.access import Principal
from controlplane.services.gitops import plans as plan_service
from controlplane.store.tables import PlanRow
from controlplane.ui import queries
from controlplane.ui.identity import Reviewer, Viewer, engine_of
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


@router.get("/plans")
def plan_list(request: Request, principal: Viewer, status: str = "") -> Response:
    """Plans, newest first, optionally of one status."""
    rows = queries.recent_plans(engine_of(request), principal, status=status or None, limit=200)
    context = {"nav": "plans", "plans": rows, "status": status, "statuses": _STATUSES}
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
    context = {
        "nav": "plans",
        "plan": plan,
        "changes": [c for c in plan.changes if c.get("action") != "unchanged"],
        "unchanged": [c for c in plan.changes if c.get("action") == "unchanged"],
        "secret_changes": queries.secret_changes(plan),
        "approvals": approvals,
        "can_review": principal.has_role("reviewer") and plan.status == "pending",
        "own_commit": plan_service.writer_match(plan, principal.actor, principal.identities)
        is not None,
        "already_decided": any(a.actor.casefold() == principal.actor.casefold() for a in approvals),
        "progress": plan_service.review_progress(engine_of(request), plan.id),
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
