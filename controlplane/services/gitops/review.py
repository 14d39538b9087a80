"""Review: a reviewer approves or rejects a plan; enough approvals apply it.

Four-eyes: nobody whose work the plan activates may approve it. That is the
author and the committer of every commit in the plan's range (not only the
head), and whoever asked for a rollback. Names and e-mail addresses are
compared case-folded and trimmed, against the approver's name and every
verified identity (e-mail) an admin set on their token; any match refuses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.errors import ConflictError, ForbiddenError, NotFoundError
from controlplane.services.gitops.apply import apply_plan
from controlplane.services.gitops.lifecycle import APPROVED, PENDING, REJECTED, move
from controlplane.store.audit import record_event
from controlplane.store.db import transaction
from controlplane.store.tables import ApprovalRow, GitSourceRow, PlanRow


def normalize_identity(value: str) -> str:
    """How identities are compared: trimmed and case-folded."""
    return value.strip().casefold()


def plan_writers(plan: PlanRow) -> set[str]:
    """Every normalized name and e-mail whose work the plan activates or who asked for it."""
    values: list[str | None] = [plan.author, plan.author_email, plan.committer, plan.requested_by]
    for item in plan.commit_identities:
        values.extend(
            str(item.get(k) or "")
            for k in ("author", "author_email", "committer", "committer_email")
        )
    return {normalize_identity(v) for v in values if v and v.strip()}


def writer_match(plan: PlanRow, actor: str, identities: Iterable[str] = ()) -> str | None:
    """The identity of the approver that wrote or asked for the plan, or None."""
    writers = plan_writers(plan)
    for candidate in (actor, *identities):
        if normalize_identity(candidate) in writers:
            return candidate
    return None


@dataclass(frozen=True)
class Progress:
    """How far a plan's review is: approvals so far out of those required."""

    required: int
    approvals: int

    @property
    def remaining(self) -> int:
        """Approvals still needed (0 once enough)."""
        return max(self.required - self.approvals, 0)


def review_progress(engine: Engine, plan_id: str) -> Progress:
    """``needs N approvals, M so far`` for a plan (the UI shows it with who and when)."""
    with Session(engine) as session:
        plan = session.get(PlanRow, plan_id)
        if plan is None:
            raise NotFoundError(f"plan {plan_id} does not exist")
        source = session.get(GitSourceRow, plan.source_id)
        required = source.required_approvals if source is not None else 1
        approvals = session.exec(
            select(ApprovalRow).where(
                col(ApprovalRow.plan_id) == plan_id, col(ApprovalRow.decision) == "approve"
            )
        ).all()
    return Progress(required, len(approvals))


def decide_plan(
    engine: Engine,
    plan_id: str,
    *,
    actor: str,
    approve: bool,
    comment: str | None,
    identities: Iterable[str] = (),
) -> PlanRow:
    """Record a reviewer's decision; enough approvals apply the plan."""
    identities = tuple(identities)
    with transaction(engine) as session:
        plan = session.get(PlanRow, plan_id, with_for_update=True)
        if plan is None:
            raise NotFoundError(f"plan {plan_id} does not exist")
        if plan.status != PENDING:
            raise ConflictError(f"plan {plan_id} is {plan.status}; only a pending plan is reviewed")
        if approve:
            _check_four_eyes(plan, actor, identities)
        decided = session.exec(select(ApprovalRow).where(col(ApprovalRow.plan_id) == plan_id)).all()
        # "Rita" and "rita" are one person: a second token must not count twice.
        if any(normalize_identity(a.actor) == normalize_identity(actor) for a in decided):
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
            summary={"comment": comment, "commit_author": plan.author},
        )
        source = session.get(GitSourceRow, plan.source_id)
        approvals = session.exec(
            select(ApprovalRow).where(
                col(ApprovalRow.plan_id) == plan_id, col(ApprovalRow.decision) == "approve"
            )
        ).all()
        if not approve:
            move(plan, REJECTED, reason=f"rejected by {actor}")
        elif source is not None and len(approvals) >= source.required_approvals:
            move(plan, APPROVED)
        session.add(plan)
        ready = plan.status == APPROVED
    return apply_plan(engine, plan_id, actor=actor) if ready else plan


def _check_four_eyes(plan: PlanRow, actor: str, identities: tuple[str, ...]) -> None:
    if plan.requested_by and normalize_identity(actor) == normalize_identity(plan.requested_by):
        raise ForbiddenError(f"{actor} asked for this rollback and cannot approve it")
    match = writer_match(plan, actor, identities)
    if match is not None:
        raise ForbiddenError(
            f"{actor} ({match}) wrote or committed a commit of plan {plan.id} "
            f"(up to {plan.target_commit[:12]}) and cannot approve it"
        )
