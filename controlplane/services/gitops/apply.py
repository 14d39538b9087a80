"""Apply: activate every flow and secret change of a plan in one transaction, or none.

Before writing, apply checks the plan's ``basis``: every flow it writes must
still be at the live revision, and with the owner, the plan was computed
against. If anything moved (an API write, another source, a newer apply) the
plan is refused as stale and fails with that reason; a new sync plans again.

Any error inside the apply rolls the transaction back and marks the plan
failed with the reason. A process killed mid-apply leaves the plan
``approved`` (the transaction never committed); ``recover_plans`` at start
applies it again or marks it failed, so no plan is stuck.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.domain.plan import Action
from controlplane.errors import ConflictError, FlowplaneError, NotFoundError
from controlplane.logging import get_logger
from controlplane.services.flows import Definition, Provenance, write_definition, write_tombstone
from controlplane.services.gitops.argo import keep_original
from controlplane.services.gitops.lifecycle import (
    APPLIED,
    APPROVED,
    FAILED,
    LOCAL,
    MANAGED,
    OPEN_STATUSES,
    ROLLBACK,
    move,
    refresh_source_namespaces,
    source_origin,
    touched_namespaces,
)
from controlplane.services.secrets import remove_owned, store_sealed
from controlplane.store import flows as flow_store
from controlplane.store.audit import record_event
from controlplane.store.db import transaction
from controlplane.store.tables import ApprovalRow, FlowRevisionRow, GitSourceRow, PlanRow

log = get_logger(__name__)
RECOVERY_ACTOR = "recovery"


class StalePlanError(ConflictError):
    """The live revisions a plan touches changed since it was computed."""


def apply_plan(engine: Engine, plan_id: str, *, actor: str) -> PlanRow:
    """Activate every flow and secret change of the plan in one transaction, or none of them.

    Raises ``ConflictError`` (the plan is then failed, with the reason) when
    the plan is stale or a flow it writes is owned elsewhere; any other error
    also fails the plan before it propagates.
    """
    with Session(engine) as session:
        found = session.get(PlanRow, plan_id)
        if found is None:
            raise NotFoundError(f"plan {plan_id} does not exist")
        if found.status not in OPEN_STATUSES:
            raise ConflictError(f"plan {plan_id} is {found.status} and cannot be applied")
    try:
        with transaction(engine) as session:
            return _apply(session, plan_id, actor)
    except Exception as exc:
        reason = _reason(exc)
        _fail(engine, plan_id, reason, actor=actor)
        log.warning("plan_apply_failed", plan=plan_id, reason=reason)
        raise


def _apply(session: Session, plan_id: str, actor: str) -> PlanRow:
    plan = session.get(PlanRow, plan_id, with_for_update=True)
    assert plan is not None  # noqa: S101 - plans are never deleted
    if plan.status not in OPEN_STATUSES:
        # Another process (recovery, a second approver) finished it meanwhile.
        raise ConflictError(f"plan {plan_id} is {plan.status} and cannot be applied")
    source = session.get(GitSourceRow, plan.source_id)
    assert source is not None  # noqa: S101 - foreign key
    if source.deleted_at is not None:
        raise ConflictError(f"Git source {source.id} was deleted")
    origin = source_origin(source)
    _check_basis(session, plan)
    provenance = Provenance(
        origin=origin,
        actor=actor,
        git_commit_sha=None if plan.kind == LOCAL else plan.target_commit,
        git_author=plan.author,
        git_message=plan.message,
        plan_id=plan.id,
    )
    for change in plan.changes:
        written = _apply_change(session, change, provenance, prune=source.prune)
        if written is not None and plan.kind == ROLLBACK:
            # Provenance has no rollback field; mark the row before commit.
            written.rollback = True
            session.add(written)
    _apply_secrets(session, plan, origin, actor=actor, prune=source.prune)
    move(plan, APPLIED)
    record_event(
        session,
        actor=actor,
        action="plan.apply",
        target=f"plan:{plan.id}",
        summary={
            "commit": plan.target_commit,
            "changes": plan.summary,
            "kind": plan.kind,
            "commit_author": plan.author,
        },
    )
    source.last_commit = plan.target_commit
    session.add_all([plan, source])
    session.flush()
    refresh_source_namespaces(session, source, touched_namespaces(plan))
    return plan


def _check_basis(session: Session, plan: PlanRow) -> None:
    """Refuse a stale plan: a flow it writes is no longer as the plan saw it."""
    for key, expected in sorted(plan.basis.items()):
        namespace, _, flow_id = key.partition("/")
        flow, live = flow_store.get_live(session, namespace, flow_id, lock=True)
        now = [live.revision, flow.origin] if flow is not None and live is not None else None
        if now != (list(expected) if expected is not None else None):
            seen = f"revision {expected[0]} of {expected[1]}" if expected else "absent"
            found = f"revision {now[0]} of {now[1]}" if now else "absent"
            raise StalePlanError(
                f"plan {plan.id} is stale: {key} was {seen} when planned and is {found} now; "
                "sync again to plan against the live flows"
            )


def _apply_secrets(
    session: Session, plan: PlanRow, origin: str, *, actor: str, prune: bool
) -> None:
    for item in plan.secret_changes:
        namespace, key, action = item["namespace"], item["key"], item["action"]
        if action in {"add", "change"}:
            sealed = plan.secret_payload.get(namespace, {}).get(key)
            if sealed is None:
                raise ConflictError(f"plan {plan.id} lost the value of secret {namespace}/{key}")
            store_sealed(
                session, namespace, key, base64.b64decode(sealed), origin=origin, actor=actor
            )
        elif action == "remove" and prune:
            remove_owned(session, namespace, key, origin=origin, actor=actor)


def _apply_change(
    session: Session, change: dict[str, Any], provenance: Provenance, *, prune: bool
) -> FlowRevisionRow | None:
    """Write one flow change; the revision written, or None when nothing was."""
    action = Action(change["action"])
    if action in {Action.UNCHANGED, Action.ORPHAN}:
        return None
    flow, live = flow_store.get_live(session, change["namespace"], change["flow_id"], lock=True)
    managed = flow is not None and flow.origin.startswith(MANAGED) and not flow.deleted
    if (
        action is not Action.TAKE_OVER
        and managed
        and flow is not None
        and flow.origin != provenance.origin
    ):
        raise ConflictError(f"flow {flow.namespace}/{flow.flow_id} is managed by {flow.origin}")
    if action == Action.REMOVE:
        if prune and flow is not None and live is not None:
            return write_tombstone(session, flow, live, provenance)
        return None
    definition = Definition(
        change["namespace"],
        change["flow_id"],
        change["source"],
        change["spec"],
        change["spec_sha256"],
    )
    result = write_definition(session, definition, provenance, flow, live)
    if result.changed:
        keep_original(result.state.revision, change)
    if not result.changed and flow is not None and flow.origin != provenance.origin:
        # Taken over with the very same source: only the owner changes.
        flow.origin = provenance.origin
        session.add(flow)
    return result.state.revision if result.changed else None


def _reason(exc: Exception) -> str:
    if isinstance(exc, FlowplaneError):
        return str(exc)
    return f"apply failed: {type(exc).__name__}: {exc}"[:2000]


def _fail(engine: Engine, plan_id: str, reason: str, *, actor: str) -> None:
    with transaction(engine) as session:
        failed = session.get(PlanRow, plan_id, with_for_update=True)
        if failed is None or failed.status not in OPEN_STATUSES:
            return
        move(failed, FAILED, reason=reason)
        session.add(failed)
        record_event(
            session,
            actor=actor,
            action="plan.fail",
            target=f"plan:{plan_id}",
            summary={"reason": reason},
        )


@dataclass(frozen=True)
class Recovered:
    """What recovery did with one plan left approved."""

    plan_id: str
    status: str
    reason: str | None = None


def recover_plans(engine: Engine) -> list[Recovered]:
    """Finish every plan an earlier process approved but never applied (called at start).

    Each is applied again, as the approver who completed it, or marked failed
    with the reason; none stays ``approved``.
    """
    with Session(engine) as session:
        stuck = session.exec(
            select(PlanRow.id)
            .where(col(PlanRow.status) == APPROVED)
            .order_by(col(PlanRow.created_at))
        ).all()
    outcomes: list[Recovered] = []
    for plan_id in stuck:
        actor = _last_approver(engine, plan_id) or RECOVERY_ACTOR
        try:
            plan = apply_plan(engine, plan_id, actor=actor)
            outcomes.append(Recovered(plan_id, plan.status))
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the plan
            with Session(engine) as session:
                row = session.get(PlanRow, plan_id)
                status = row.status if row else FAILED
                reason = row.status_reason if row else None
            if status == APPROVED:  # pragma: no cover - apply_plan fails it on any error
                _fail(engine, plan_id, _reason(exc), actor=RECOVERY_ACTOR)
                status, reason = FAILED, _reason(exc)
            outcomes.append(Recovered(plan_id, status, reason))
        log.info("plan_recovered", plan=plan_id, status=outcomes[-1].status)
    return outcomes


def _last_approver(engine: Engine, plan_id: str) -> str | None:
    with Session(engine) as session:
        row = session.exec(
            select(ApprovalRow)
            .where(col(ApprovalRow.plan_id) == plan_id, col(ApprovalRow.decision) == "approve")
            .order_by(col(ApprovalRow.pk).desc())
        ).first()
        return row.actor if row else None
