"""The reads the pages need, already filtered to what the principal may see.

Flows and executions are filtered in SQL by the principal's namespace globs.
Plans and audit events belong to namespaces only through their contents, so
those lists read a bounded window (``_WINDOW``) and keep the visible rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.services.access import Principal
from controlplane.services.gitops.plans import touched_namespaces
from controlplane.store import executions as execution_store
from controlplane.store import flows as flow_store
from controlplane.store.flows import FlowFilter
from controlplane.store.tables import (
    ApprovalRow,
    AuditEventRow,
    ExecutionRow,
    FlowRevisionRow,
    FlowRow,
    GitSourceRow,
    NamespaceRow,
    PlanRow,
)

_WINDOW = 1000
# The plan text names secrets by key only: "+ secret ns/KEY: added (sensitive)".
MASK = "******"


@dataclass(frozen=True)
class SecretChangeView:
    """A secret a plan adds, changes or removes: its key and action, nothing more."""

    namespace: str
    key: str
    action: str


def secret_changes(plan: PlanRow) -> list[SecretChangeView]:
    """The secret changes of a plan: key and action, never a value."""
    return [
        SecretChangeView(str(item["namespace"]), str(item["key"]), str(item["action"]))
        for item in plan.secret_changes
    ]


def can_see_plan(principal: Principal, plan: PlanRow) -> bool:
    """A plan is visible when every namespace it touches is; one touching none needs ``*``."""
    return principal.can_see_all(touched_namespaces(plan))


def recent_plans(
    engine: Engine, principal: Principal, *, status: str | None = None, limit: int = 50
) -> list[PlanRow]:
    """Plans, newest first."""
    statement = select(PlanRow).order_by(col(PlanRow.created_at).desc()).limit(_WINDOW)
    if status:
        statement = statement.where(col(PlanRow.status) == status)
    with Session(engine) as session:
        rows = session.exec(statement).all()
    return [row for row in rows if can_see_plan(principal, row)][:limit]


def source_urls(engine: Engine) -> dict[str, str]:
    """Every source's URL (credentials are never stored in it) by id, for commit links."""
    with Session(engine) as session:
        return {row.id: row.url for row in session.exec(select(GitSourceRow)).all()}


def approvals_of(engine: Engine, plan_id: str) -> Sequence[ApprovalRow]:
    """A plan's decisions so far, oldest first."""
    with Session(engine) as session:
        return session.exec(
            select(ApprovalRow)
            .where(col(ApprovalRow.plan_id) == plan_id)
            .order_by(col(ApprovalRow.decided_at))
        ).all()


def get_plan(engine: Engine, plan_id: str) -> PlanRow | None:
    """One plan."""
    with Session(engine) as session:
        return session.get(PlanRow, plan_id)


def executions(
    engine: Engine,
    principal: Principal,
    *,
    namespace: str | None = None,
    flow_id: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> list[ExecutionRow]:
    """Executions, newest first, filtered."""
    with Session(engine) as session:
        rows = execution_store.list_executions(
            session,
            namespace=namespace or None,
            flow_id=flow_id or None,
            state=state or None,
            offset=0,
            limit=limit,
            scopes=principal.scopes,
        )
    return list(rows)


def flows_by_namespace(
    engine: Engine, principal: Principal
) -> dict[str, list[tuple[FlowRow, FlowRevisionRow]]]:
    """Live flows grouped by namespace, with every visible namespace present (even empty)."""
    with Session(engine) as session:
        rows, _ = flow_store.list_active(
            session, FlowFilter(scopes=principal.scopes), offset=0, limit=_WINDOW
        )
        names = session.exec(select(NamespaceRow.name)).all()
    grouped: dict[str, list[tuple[FlowRow, FlowRevisionRow]]] = {
        name: [] for name in names if principal.can_see(name)
    }
    for flow, revision in rows:
        if principal.can_see(flow.namespace):
            grouped.setdefault(flow.namespace, []).append((flow, revision))
    return dict(sorted(grouped.items()))


def revision_of(engine: Engine, execution: ExecutionRow) -> FlowRevisionRow | None:
    """The revision an execution is pinned to."""
    with Session(engine) as session:
        return session.get(FlowRevisionRow, execution.revision_pk)


def target_namespaces(session: Session, rows: list[AuditEventRow]) -> dict[str, set[str]]:
    """The namespaces each audit target belongs to; unknown targets map to nothing."""
    found: dict[str, set[str]] = {}
    execution_ids, plan_ids = set(), set()
    for row in rows:
        kind, _, name = row.target.partition(":")
        if kind in {"flow", "secret"}:
            found[row.target] = {name.split("/", 1)[0]}
        elif kind == "namespace":
            found[row.target] = {name}
        elif kind == "execution":
            execution_ids.add(name)
        elif kind == "plan":
            plan_ids.add(name)
    if execution_ids:
        for execution in session.exec(
            select(ExecutionRow).where(col(ExecutionRow.id).in_(execution_ids))
        ):
            found[f"execution:{execution.id}"] = {execution.namespace}
    if plan_ids:
        for plan in session.exec(select(PlanRow).where(col(PlanRow.id).in_(plan_ids))):
            found[f"plan:{plan.id}"] = touched_namespaces(plan)
    return found


def events_for(engine: Engine, targets: list[str]) -> Sequence[AuditEventRow]:
    """Audit events about any of ``targets``, oldest first (for the lineage panel)."""
    with Session(engine) as session:
        return session.exec(
            select(AuditEventRow)
            .where(col(AuditEventRow.target).in_(targets))
            .order_by(col(AuditEventRow.pk))
        ).all()
