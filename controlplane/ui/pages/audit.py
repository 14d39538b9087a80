"""The audit log: events with filters, and whether the hash chain still verifies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlmodel import Session
from starlette.responses import Response

from controlplane.store.audit import verify_chain
from controlplane.ui import queries
from controlplane.ui.identity import Viewer, engine_of
from controlplane.ui.rendering import page

router = APIRouter()


@router.get("/audit")
def audit_page(
    request: Request,
    principal: Viewer,
    action: Annotated[str, Query(max_length=100)] = "",
    actor: Annotated[str, Query(max_length=200)] = "",
    target: Annotated[str, Query(max_length=400)] = "",
) -> Response:
    """Events newest first, filtered, with the result of verifying the whole chain."""
    engine = engine_of(request)
    flt = queries.AuditFilter(action=action, actor=actor, target=target)
    with Session(engine) as session:
        report = verify_chain(session)
    context = {
        "nav": "audit",
        "events": queries.audit_events(engine, principal, flt),
        "filters": flt,
        "chain": report,
    }
    return page(request, "audit.html", context)
