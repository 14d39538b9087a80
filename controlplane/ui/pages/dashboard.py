"""The dashboard: what changed and what ran lately, and what failed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from controlplane.domain.fields import State
from controlplane.ui import queries
from controlplane.ui.identity import Viewer, engine_of
from controlplane.ui.rendering import page

router = APIRouter()
_RECENT = 10


@router.get("/")
def dashboard(request: Request, principal: Viewer) -> Response:
    """Recent plans, recent executions and recent failures, within the principal's scopes."""
    engine = engine_of(request)
    context = {
        "nav": "dashboard",
        "pending": queries.recent_plans(engine, principal, status="pending", limit=_RECENT),
        "plans": queries.recent_plans(engine, principal, limit=_RECENT),
        "executions": queries.executions(engine, principal, limit=_RECENT),
        "failures": queries.executions(engine, principal, state=State.FAILED.value, limit=_RECENT),
        "failed_plans": queries.recent_plans(engine, principal, status="failed", limit=5),
    }
    return page(request, "dashboard.html", context)
