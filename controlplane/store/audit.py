"""The audit log: an append-only hash chain of every mutation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import text
from sqlmodel import Session, col, select

from controlplane.store.tables import AuditEventRow, utcnow

GENESIS = "0" * 64
# Any constant: PostgreSQL advisory lock that serializes appends, so two
# concurrent transactions cannot both link to the same previous event.
_APPEND_LOCK = 0x464C4F57


def event_hash(
    prev_hash: str,
    *,
    at: str,
    actor: str,
    action: str,
    target: str,
    summary: Any,
    request_id: str | None = None,
) -> str:
    """sha256 over the previous hash and the event's canonical JSON."""
    fields: dict[str, Any] = {
        "prev": prev_hash,
        "at": at,
        "actor": actor,
        "action": action,
        "target": target,
        "summary": summary,
    }
    # Hashed only when present, so events written before request ids existed still verify.
    if request_id is not None:
        fields["request_id"] = request_id
    body = json.dumps(
        fields,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _at(row: AuditEventRow) -> str:
    return row.at.replace(tzinfo=None).isoformat(timespec="microseconds")


def record_event(
    session: Session, *, actor: str, action: str, target: str, summary: dict[str, Any]
) -> AuditEventRow:
    """Append one event in the caller's transaction (so it commits with the change)."""
    if session.get_bind().dialect.name == "postgresql":
        session.exec(text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_APPEND_LOCK))  # type: ignore[call-overload]
    last = session.exec(
        select(AuditEventRow).order_by(col(AuditEventRow.pk).desc()).limit(1)
    ).first()
    prev = last.hash if last else GENESIS
    # The API binds the request id into structlog's context for each request.
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    row = AuditEventRow(
        at=utcnow(),
        actor=actor,
        action=action,
        target=target,
        request_id=request_id,
        summary=summary,
        prev_hash=prev,
        hash="",
    )
    row.hash = event_hash(
        prev,
        at=_at(row),
        actor=actor,
        action=action,
        target=target,
        summary=summary,
        request_id=request_id,
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class ChainReport:
    """The result of checking the chain."""

    valid: bool
    events: int
    first_broken: int | None = None
    reason: str = ""


def verify_chain(session: Session) -> ChainReport:
    """Recompute every hash in order; name the first event that does not fit."""
    rows: Sequence[AuditEventRow] = session.exec(
        select(AuditEventRow).order_by(col(AuditEventRow.pk))
    ).all()
    prev = GENESIS
    for row in rows:
        if row.prev_hash != prev:
            return ChainReport(
                valid=False,
                events=len(rows),
                first_broken=row.pk,
                reason="prev_hash does not match the event before",
            )
        expected = event_hash(
            prev,
            at=_at(row),
            actor=row.actor,
            action=row.action,
            target=row.target,
            summary=row.summary,
            request_id=row.request_id,
        )
        if row.hash != expected:
            return ChainReport(
                valid=False,
                events=len(rows),
                first_broken=row.pk,
                reason="content does not match its hash",
            )
        prev = row.hash
    return ChainReport(valid=True, events=len(rows))
