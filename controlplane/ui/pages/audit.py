"""The audit log: events with filters and pages, and whether the hash chain still verifies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlmodel import Session
from starlette.responses import Response

from controlplane.store.audit import verify_chain
from controlplane.ui import listing
from controlplane.ui.identity import Viewer, engine_of
from controlplane.ui.rendering import page

router = APIRouter()
Day = Annotated[str, Query(max_length=10)]


@router.get("/audit")
def audit_page(
    request: Request,
    principal: Viewer,
    *,
    action: Annotated[str, Query(max_length=100)] = "",
    actor: Annotated[str, Query(max_length=200)] = "",
    target: Annotated[str, Query(max_length=400)] = "",
    since: Day = "",
    until: Day = "",
    upto: Annotated[int | None, Query(ge=0)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    """Events newest first, filtered, with the result of verifying the whole chain.

    ``upto`` shows events at or before one position: the "first broken event"
    link uses it so that event heads the page.
    """
    engine = engine_of(request)
    days = listing.DateRange(listing.parse_day(since), listing.parse_day(until))
    flt = listing.AuditFilter(action=action, actor=actor, target=target, days=days, upto=upto)
    with Session(engine) as session:
        report = verify_chain(session)
    result = listing.audit_page(engine, principal, flt, page_number)
    context = {
        "nav": "audit",
        "page": result,
        "commit_links": listing.audit_commit_links(engine, result.rows),
        "filters": {
            "action": action,
            "actor": actor,
            "target": target,
            "since": since,
            "until": until,
            "upto": "" if upto is None else str(upto),
        },
        "chain": report,
    }
    return page(request, "audit.html", context)
