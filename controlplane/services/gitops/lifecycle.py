"""What sync, review and apply share: plan statuses and kinds, origins, and the one writer.

``move`` is the only function that writes a plan's status; it checks every
change against the rules of ``domain.plan_states``. ``store_plan`` inserts a
new plan (superseding older open ones) and is the only insert.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.domain.plan import ActiveFlow
from controlplane.domain.plan_states import OPEN, TERMINAL, PlanStatus, check_plan_transition
from controlplane.store.audit import record_event
from controlplane.store.db import transaction
from controlplane.store.flows import LIVE_REVISION
from controlplane.store.tables import FlowRevisionRow, FlowRow, GitSourceRow, PlanRow, utcnow

PENDING, APPROVED, APPLIED, REJECTED, FAILED, SUPERSEDED, NO_CHANGES = (
    PlanStatus.PENDING.value,
    PlanStatus.APPROVED.value,
    PlanStatus.APPLIED.value,
    PlanStatus.REJECTED.value,
    PlanStatus.FAILED.value,
    PlanStatus.SUPERSEDED.value,
    PlanStatus.NO_CHANGES.value,
)
SYNC, HEAL, ROLLBACK, LOCAL = "sync", "heal", "rollback", "local"
LOCAL_SCHEME = "local:"
OPEN_STATUSES = tuple(str(s) for s in OPEN)
# Managed origins own their flows: nothing else may write them while live.
MANAGED = ("git:", LOCAL_SCHEME)

# Called with every namespace an operation will touch, before anything is
# written; raises ForbiddenError to stop it (the API passes the caller's check).
Authorize = Callable[[Collection[str]], None]


def origin_of(source_id: str) -> str:
    """The origin recorded on revisions a Git source writes."""
    return f"git:{source_id}"


def source_origin(source: GitSourceRow) -> str:
    """The origin of a source's revisions: ``git:<id>``, or ``local:<dir>`` when watched."""
    return source.url if is_local(source) else origin_of(source.id)


def is_local(source: GitSourceRow) -> bool:
    """True for a watched directory (``url`` is ``local:<dir>``) rather than a Git remote."""
    return source.url.startswith(LOCAL_SCHEME)


def touched_namespaces(plan: PlanRow) -> set[str]:
    """Every namespace a plan names, through its flows or its secrets (for scope checks)."""
    return {
        str(change["namespace"])
        for change in [*plan.changes, *plan.secret_changes]
        if isinstance(change, dict) and change.get("namespace")
    }


def active_sets(
    session: Session, origin: str
) -> tuple[list[ActiveFlow], dict[tuple[str, str], str]]:
    """The live flows ``origin`` owns, and every other live flow's key with its owner.

    Plain columns, not ORM rows: a source may own 10,000 flows, and only the
    owned ones need their source and spec.
    """
    live = col(FlowRow.deleted).is_(False)
    # Seven columns: more than sqlmodel's ``select`` types, so SQLAlchemy's.
    owned_rows = session.connection().execute(
        sa.select(
            col(FlowRow.namespace),
            col(FlowRow.flow_id),
            col(FlowRow.revision),
            col(FlowRevisionRow.source),
            col(FlowRevisionRow.spec),
            col(FlowRevisionRow.spec_sha256),
            col(FlowRevisionRow.spec_fingerprint),
        )
        .join(FlowRevisionRow, LIVE_REVISION)
        .where(live, col(FlowRow.origin) == origin)
    )
    owned = [
        ActiveFlow(
            row.namespace,
            row.flow_id,
            row.revision,
            row.source,
            row.spec,
            row.spec_sha256,
            row.spec_fingerprint,
        )
        for row in owned_rows
    ]
    others = session.exec(
        select(FlowRow.namespace, FlowRow.flow_id, FlowRow.origin).where(
            live, col(FlowRow.origin) != origin
        )
    )
    return owned, {(namespace, flow_id): owner for namespace, flow_id, owner in others}


def owned_namespaces(session: Session, origin: str) -> set[str]:
    """The namespaces of the live flows ``origin`` owns."""
    return set(
        session.exec(
            select(FlowRow.namespace)
            .where(col(FlowRow.deleted).is_(False), col(FlowRow.origin) == origin)
            .distinct()
        )
    )


def move(plan: PlanRow, target: str, *, reason: str | None = None) -> None:
    """Change ``plan``'s status through the transition rules; the only writer of it.

    A plan that ends forgets its sealed secret values (they live in the secrets
    table once applied) and records when and, when given, why.
    """
    check_plan_transition(plan.status, target)
    plan.status = target
    if reason is not None:
        plan.status_reason = reason
    if PlanStatus(target) in TERMINAL:
        plan.decided_at = utcnow()
        plan.secret_payload = {}


def refresh_source_namespaces(session: Session, source: GitSourceRow, extra: Iterable[str]) -> None:
    """Set the namespaces a source belongs to: its live flows' and ``extra`` (a plan's)."""
    namespaces = sorted(owned_namespaces(session, source_origin(source)) | set(extra))
    if namespaces != list(source.namespaces):
        source.namespaces = namespaces
        session.add(source)


def store_plan(
    engine: Engine, source_id: str, row: PlanRow, *, replaces: str | None = None
) -> None:
    """Insert ``row`` and supersede the source's older open plans, in one transaction.

    ``replaces`` is a failed plan of the same commit whose dedup key moves to
    ``row`` (a commit whose apply failed can be planned again).
    """
    with transaction(engine) as session:
        for older in session.exec(
            select(PlanRow).where(
                col(PlanRow.source_id) == source_id, col(PlanRow.status).in_(OPEN_STATUSES)
            )
        ):
            move(older, SUPERSEDED, reason=f"superseded by plan {row.id}")
            session.add(older)
        if replaces is not None:
            failed = session.get(PlanRow, replaces)
            if failed is not None:
                failed.dedup_key = None
                session.add(failed)
                session.flush()
        session.add(row)
        source = session.get(GitSourceRow, source_id)
        if source is not None:
            if row.status == NO_CHANGES and row.kind in {SYNC, ROLLBACK}:
                # Nothing to apply, yet the live flows are now this commit's.
                source.last_commit = row.target_commit
                session.add(source)
            refresh_source_namespaces(session, source, touched_namespaces(row))
        summary: dict[str, Any] = {
            "source": source_id,
            "commit": row.target_commit,
            "status": row.status,
            "kind": row.kind,
            "commit_author": row.author,
        }
        record_event(
            session,
            actor=row.created_by or row.requested_by or "git",
            action="plan.create",
            target=f"plan:{row.id}",
            summary=summary,
        )
