"""``/api/v1/audit``: the tamper-evident log of every mutation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import Session, col, select

from controlplane.api.auth import Viewer, check_unscoped
from controlplane.api.deps import EngineDep, PageDep
from controlplane.api.limits import Text
from controlplane.store.audit import verify_chain
from controlplane.store.db import as_utc
from controlplane.store.tables import AuditEventRow

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditEvent(BaseModel):
    """One recorded mutation."""

    position: int
    at: datetime
    actor: str
    action: str
    target: str
    request_id: str | None
    summary: dict[str, Any]
    hash: str
    prev_hash: str


class ChainStatus(BaseModel):
    """The result of verifying the hash chain."""

    valid: bool
    events: int
    first_broken: int | None
    reason: str


@router.get("", response_model=list[AuditEvent])
def list_events(
    engine: EngineDep,
    principal: Viewer,
    page: PageDep,
    action: Annotated[Text | None, Query(description="e.g. plan.approve")] = None,
    target: Annotated[
        Text | None, Query(description="Target prefix, e.g. flow:platform.ops/")
    ] = None,
    actor: Text | None = None,
) -> list[AuditEvent]:
    """Events, oldest first, filtered. The log spans namespaces, so it needs an unscoped token."""
    check_unscoped(principal, "the audit log")
    statement = select(AuditEventRow).order_by(col(AuditEventRow.pk))
    if action:
        statement = statement.where(col(AuditEventRow.action) == action)
    if target:
        statement = statement.where(col(AuditEventRow.target).startswith(target))
    if actor:
        statement = statement.where(col(AuditEventRow.actor) == actor)
    with Session(engine) as session:
        rows = session.exec(statement.offset(page.offset).limit(page.limit)).all()
    return [
        AuditEvent(
            position=r.pk or 0,
            at=as_utc(r.at),
            actor=r.actor,
            action=r.action,
            target=r.target,
            request_id=r.request_id,
            summary=r.summary,
            hash=r.hash,
            prev_hash=r.prev_hash,
        )
        for r in rows
    ]


@router.get("/verify", response_model=ChainStatus)
def verify(engine: EngineDep, principal: Viewer) -> ChainStatus:
    """Recompute the chain; name the first event that was changed or removed."""
    check_unscoped(principal, "the audit log")
    with Session(engine) as session:
        report = verify_chain(session)
    return ChainStatus(
        valid=report.valid,
        events=report.events,
        first_broken=report.first_broken,
        reason=report.reason,
    )
