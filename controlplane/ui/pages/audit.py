"""The audit log: events with filters and pages, and whether the hash chain still verifies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlmodel import Session
from starlette.responses import Response

from controlplane.store.audit import signer_from_identity, verify_from_checkpoint
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
    """Events newest first, filtered, with the chain verified from its newest checkpoint.

    Re-hashing the whole chain on every view grew with the log; the API's
    ``/audit/verify?full=true`` and ``flowplane audit verify`` do the full check.

    ``upto`` shows events at or before one position: the "first broken event"
    link uses it so that event heads the page.
    """
    engine = engine_of(request)
    days = listing.DateRange(listing.parse_day(since), listing.parse_day(until))
    flt = listing.AuditFilter(action=action, actor=actor, target=target, days=days, upto=upto)
    signer = signer_from_identity(str(request.app.state.host.keyring.identity))
    with Session(engine) as session:
        report = verify_from_checkpoint(session, signer)
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
