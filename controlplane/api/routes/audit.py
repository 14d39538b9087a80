"""``/api/v1/audit``: the tamper-evident log of every mutation, and its signed checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from controlplane.api.auth import Admin, Viewer, check_unscoped
from controlplane.api.deps import EngineDep, PageDep, get_keyring
from controlplane.api.limits import Text
from controlplane.api.schemas import ErrorBody
from controlplane.store.audit import (
    Signer,
    checkpoint_dict,
    list_checkpoints,
    signer_from_identity,
    verify_chain,
    verify_from_checkpoint,
    write_checkpoint,
)
from controlplane.store.db import as_utc, transaction
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
    """The result of verifying the hash chain and its signed checkpoints."""

    valid: bool
    events: int
    first_broken: int | None
    reason: str
    checkpoints: int = Field(description="Signed checkpoints checked against the chain")
    anchored_at: int | None = Field(description="Position of the newest checkpoint; null: none")
    problems: list[str]


class Checkpoint(BaseModel):
    """A signed statement of the chain's head; export it and keep it elsewhere."""

    at: datetime
    position: int
    head_hash: str
    events: int
    algorithm: str
    key_id: str = Field(description="The server's ed25519 public key, hex")
    signature: str


def _signer(request: Request) -> Signer:
    return signer_from_identity(str(get_keyring(request).identity))


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
def verify(
    request: Request,
    engine: EngineDep,
    principal: Viewer,
    full: Annotated[
        bool, Query(description="Re-hash the whole chain and check every checkpoint")
    ] = False,
) -> ChainStatus:
    """Verify the chain from its newest signed checkpoint forward; ``full=true``: all of it.

    The default check re-hashes only the events after the newest checkpoint,
    after checking that checkpoint's signature, event hash and event count:
    deleted last events (truncation) or a recomputed chain (rewrite) fail it.
    ``full=true`` also recomputes every older hash, which finds an old event
    edited in place, and checks every stored checkpoint.
    """
    check_unscoped(principal, "the audit log")
    with Session(engine) as session:
        signer = _signer(request)
        report = verify_chain(session, signer) if full else verify_from_checkpoint(session, signer)
    return ChainStatus(
        valid=report.valid,
        events=report.events,
        first_broken=report.first_broken,
        reason=report.reason,
        checkpoints=report.checkpoints,
        anchored_at=report.anchored_at,
        problems=list(report.problems),
    )


@router.get("/checkpoints", response_model=list[Checkpoint])
def export_checkpoints(engine: EngineDep, principal: Viewer) -> list[Checkpoint]:
    """Every signed checkpoint, oldest first: export them and keep them outside the database."""
    check_unscoped(principal, "the audit log")
    with Session(engine) as session:
        return [Checkpoint(**c) for c in list_checkpoints(session)]


@router.post(
    "/checkpoints",
    response_model=Checkpoint,
    status_code=201,
    responses={code: {"model": ErrorBody} for code in (401, 403)},
)
def make_checkpoint(request: Request, engine: EngineDep, principal: Admin) -> Checkpoint:
    """Sign the chain's head now (the server also does so periodically)."""
    check_unscoped(principal, "the audit log")
    with transaction(engine) as session:
        row = write_checkpoint(session, _signer(request))
        return Checkpoint(**checkpoint_dict(row))
