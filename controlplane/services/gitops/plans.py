"""Sync a source into a stored plan; approve, reject and apply plans.

A plan stores the exact sources and normalized specs it will activate, so
apply writes what reviewers saw, without reading Git again.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.domain.plan import Action, ActiveFlow, Plan, compute_plan, render_plan_text
from controlplane.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    Problem,
    StoreError,
)
from controlplane.services.flows import Definition, Provenance, write_definition, write_tombstone
from controlplane.services.gitops.repository import Snapshot, read_snapshot
from controlplane.store import flows as flow_store
from controlplane.store.audit import record_event
from controlplane.store.db import transaction
from controlplane.store.flows import FlowFilter
from controlplane.store.tables import ApprovalRow, GitSourceRow, PlanRow, utcnow

PENDING, APPROVED, APPLIED, REJECTED, FAILED, SUPERSEDED, NO_CHANGES = (
    "pending",
    "approved",
    "applied",
    "rejected",
    "failed",
    "superseded",
    "no_changes",
)


def origin_of(source_id: str) -> str:
    """The origin recorded on revisions a source writes."""
    return f"git:{source_id}"


def sync_source(engine: Engine, source_id: str, cache_root: Path) -> PlanRow:
    """Read the source's branch, plan it against what the source owns, store the plan.

    A commit already planned returns that plan (repeated webhooks make one plan).
    A newer plan supersedes older pending ones. With the ``auto`` policy a valid
    plan is applied at once.
    """
    with Session(engine) as session:
        source = session.get(GitSourceRow, source_id)
        if source is None:
            raise NotFoundError(f"Git source {source_id} does not exist")
        url, branch, flows_path = source.url, source.branch, source.flows_path
    snapshot = read_snapshot(url, branch, cache_root / source_id, flows_path)
    with Session(engine) as session:
        existing = _plan_for_commit(session, source_id, snapshot.commit.sha)
        if existing is not None:
            return existing
        active, known = _active_sets(session, source_id)
    plan = compute_plan(active, snapshot.files, flows_path=flows_path, known_flows=known)
    row = _plan_row(source_id, source.last_commit, snapshot, plan)
    try:
        _store_plan(engine, source_id, row)
    except StoreError:
        # A webhook and the poller planned the same commit at once: keep theirs.
        with Session(engine) as session:
            existing = _plan_for_commit(session, source_id, snapshot.commit.sha)
        if existing is None:
            raise
        return existing
    if row.status == PENDING and source.approval == "auto":
        return apply_plan(engine, row.id, actor="auto")
    return row


def _store_plan(engine: Engine, source_id: str, row: PlanRow) -> None:
    """Insert ``row`` and supersede the source's older open plans, in one transaction."""
    with transaction(engine) as session:
        for older in session.exec(
            select(PlanRow).where(
                col(PlanRow.source_id) == source_id,
                col(PlanRow.status).in_([PENDING, APPROVED]),
            )
        ):
            older.status = SUPERSEDED
            older.decided_at = utcnow()
            session.add(older)
        session.add(row)
        record_event(
            session,
            actor=row.author or "git",
            action="plan.create",
            target=f"plan:{row.id}",
            summary={"source": source_id, "commit": row.target_commit, "status": row.status},
        )


def _plan_for_commit(session: Session, source_id: str, sha: str) -> PlanRow | None:
    return session.exec(
        select(PlanRow).where(
            col(PlanRow.source_id) == source_id, col(PlanRow.target_commit) == sha
        )
    ).first()


def _active_sets(session: Session, source_id: str) -> tuple[list[ActiveFlow], set[tuple[str, str]]]:
    rows, _ = flow_store.list_active(session, FlowFilter(), offset=0, limit=1_000_000)
    owned = [
        ActiveFlow(r.namespace, r.flow_id, r.revision, r.source, r.spec, r.spec_sha256)
        for f, r in rows
        if f.origin == origin_of(source_id)
    ]
    others = {(f.namespace, f.flow_id) for f, _ in rows if f.origin != origin_of(source_id)}
    return owned, others


def _plan_row(source_id: str, base: str | None, snapshot: Snapshot, plan: Plan) -> PlanRow:
    problems = list(plan.problems) + [
        Problem("not valid UTF-8", file=path) for path in snapshot.undecodable
    ]
    if problems:
        status = FAILED
    elif plan.has_changes:
        status = PENDING
    else:
        status = NO_CHANGES
    return PlanRow(
        id=str(uuid.uuid4()),
        source_id=source_id,
        base_commit=base,
        target_commit=snapshot.commit.sha,
        author=snapshot.commit.author,
        author_email=snapshot.commit.author_email,
        committer=snapshot.commit.committer,
        message=snapshot.commit.message,
        status=status,
        summary=dict(plan.summary),
        changes=[_change_dict(change) for change in plan.changes],
        problems=[p.to_dict() for p in problems],
        text=render_plan_text(plan),
    )


def _change_dict(change: Any) -> dict[str, Any]:
    data = asdict(change)
    data["action"] = str(change.action)
    data["fields"] = [
        {"path": f.path, "kind": str(f.kind), "before": f.before, "after": f.after}
        for f in change.fields
    ]
    return data


def decide_plan(
    engine: Engine, plan_id: str, *, actor: str, approve: bool, comment: str | None
) -> PlanRow:
    """Record a reviewer's decision; enough approvals apply the plan.

    Four-eyes: the commit's author cannot approve their own plan.
    """
    with transaction(engine) as session:
        plan = session.get(PlanRow, plan_id, with_for_update=True)
        if plan is None:
            raise NotFoundError(f"plan {plan_id} does not exist")
        if plan.status != PENDING:
            raise ConflictError(f"plan {plan_id} is {plan.status}; only a pending plan is reviewed")
        if approve and actor in {plan.author, plan.author_email}:
            raise ForbiddenError(
                f"{actor} wrote commit {plan.target_commit[:12]} and cannot approve it"
            )
        if session.exec(
            select(ApprovalRow).where(
                col(ApprovalRow.plan_id) == plan_id, col(ApprovalRow.actor) == actor
            )
        ).first():
            raise ConflictError(f"{actor} already decided on plan {plan_id}")
        session.add(
            ApprovalRow(
                plan_id=plan_id,
                actor=actor,
                decision="approve" if approve else "reject",
                comment=comment,
            )
        )
        session.flush()
        record_event(
            session,
            actor=actor,
            action="plan.approve" if approve else "plan.reject",
            target=f"plan:{plan_id}",
            summary={"comment": comment},
        )
        source = session.get(GitSourceRow, plan.source_id)
        approvals = session.exec(
            select(ApprovalRow).where(
                col(ApprovalRow.plan_id) == plan_id, col(ApprovalRow.decision) == "approve"
            )
        ).all()
        if not approve:
            plan.status = REJECTED
            plan.decided_at = utcnow()
        elif source is not None and len(approvals) >= source.required_approvals:
            plan.status = APPROVED
        session.add(plan)
        ready = plan.status == APPROVED
    return apply_plan(engine, plan_id, actor=actor) if ready else plan


def apply_plan(engine: Engine, plan_id: str, *, actor: str) -> PlanRow:
    """Activate every change of the plan in one transaction, or none of them."""
    with Session(engine) as session:
        found = session.get(PlanRow, plan_id)
        if found is None:
            raise NotFoundError(f"plan {plan_id} does not exist")
        if found.status not in {PENDING, APPROVED}:
            raise ConflictError(f"plan {plan_id} is {found.status} and cannot be applied")
    try:
        with transaction(engine) as session:
            plan = session.get(PlanRow, plan_id, with_for_update=True)
            assert plan is not None  # noqa: S101 - plans are never deleted
            source = session.get(GitSourceRow, plan.source_id)
            assert source is not None  # noqa: S101 - foreign key
            provenance = Provenance(
                origin=origin_of(source.id),
                actor=actor,
                git_commit_sha=plan.target_commit,
                git_author=plan.author,
                git_message=plan.message,
                plan_id=plan.id,
            )
            for change in plan.changes:
                _apply_change(session, change, provenance, prune=source.prune)
            plan.status = APPLIED
            record_event(
                session,
                actor=actor,
                action="plan.apply",
                target=f"plan:{plan.id}",
                summary={"commit": plan.target_commit, "changes": plan.summary},
            )
            plan.decided_at = utcnow()
            source.last_commit = plan.target_commit
            session.add_all([plan, source])
            return plan
    except ConflictError:
        with transaction(engine) as session:
            failed = session.get(PlanRow, plan_id)
            if failed is not None and failed.status in {PENDING, APPROVED}:
                failed.status = FAILED
                session.add(failed)
        raise


def _apply_change(
    session: Session, change: dict[str, Any], provenance: Provenance, *, prune: bool
) -> None:
    action = Action(change["action"])
    if action == Action.UNCHANGED:
        return
    flow, live = flow_store.get_live(session, change["namespace"], change["flow_id"], lock=True)
    other_source = flow is not None and flow.origin.startswith("git:")
    if other_source and flow is not None and flow.origin != provenance.origin and not flow.deleted:
        raise ConflictError(f"flow {flow.namespace}/{flow.flow_id} is managed by {flow.origin}")
    if action == Action.REMOVE:
        if prune and flow is not None and live is not None:
            write_tombstone(session, flow, live, provenance)
        return
    definition = Definition(
        change["namespace"],
        change["flow_id"],
        change["source"],
        change["spec"],
        change["spec_sha256"],
    )
    write_definition(session, definition, provenance, flow, live)
