"""The list pages' reads: filters (prefix, text, date range), one page of rows and the total.

Executions are filtered and counted in SQL, scopes included, so the total is
exact. Plans and audit events belong to namespaces only through their
contents: those lists filter in SQL first, then keep the rows the principal
may see from a bounded window (``WINDOW`` newest matches), and say when the
window was full so the total reads "at least".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from controlplane.services.access import Principal
from controlplane.services.gitops.plans import touched_namespaces
from controlplane.services.lineage import commit_link
from controlplane.store.scopes import scope_condition
from controlplane.store.tables import AuditEventRow, ExecutionRow, GitSourceRow, PlanRow
from controlplane.ui.queries import target_namespaces

WINDOW = 2000
PER_PAGE = 50
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a filtered list, and where it sits in the whole."""

    rows: list[T]
    total: int
    number: int
    per_page: int
    capped: bool = False  # the total counts only the newest WINDOW matches

    @property
    def pages(self) -> int:
        """How many pages there are (at least 1)."""
        return max((self.total + self.per_page - 1) // self.per_page, 1)

    @property
    def first(self) -> int:
        """The 1-based position of the page's first row (0 when empty)."""
        return (self.number - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        """The 1-based position of the page's last row."""
        return self.first + len(self.rows) - 1 if self.rows else 0


def page_of(rows: Sequence[T], number: int, per_page: int, *, capped: bool = False) -> Page[T]:
    """Slice page ``number`` (1-based, clamped) out of every matching row."""
    pages = max((len(rows) + per_page - 1) // per_page, 1)
    number = min(max(number, 1), pages)
    start = (number - 1) * per_page
    return Page(list(rows[start : start + per_page]), len(rows), number, per_page, capped)


def parse_day(text: str) -> date | None:
    """A ``YYYY-MM-DD`` form value; empty or malformed is no bound."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class DateRange:
    """Whole UTC days, both ends included; either end may be open."""

    since: date | None = None
    until: date | None = None

    def where(self, column: Any) -> list[Any]:
        """SQL conditions keeping ``column`` inside the range."""
        conditions = []
        if self.since:
            conditions.append(column >= datetime.combine(self.since, time(), tzinfo=UTC))
        if self.until:
            end = datetime.combine(self.until + timedelta(days=1), time(), tzinfo=UTC)
            conditions.append(column < end)
        return conditions


@dataclass(frozen=True)
class ExecutionFilter:
    """Executions: a namespace prefix, text in the flow id or an id prefix, a state, days."""

    namespace: str = ""
    q: str = ""
    state: str = ""
    flow_id: str = ""  # exact, for "all runs of this flow" links
    days: DateRange = field(default_factory=DateRange)


def execution_page(
    engine: Engine, principal: Principal, flt: ExecutionFilter, number: int = 1
) -> Page[ExecutionRow]:
    """One page of executions, newest first, with the exact total."""
    conditions: list[Any] = []
    scoped = scope_condition(col(ExecutionRow.namespace), principal.scopes)
    if scoped is not None:
        conditions.append(scoped)
    if flt.namespace:
        conditions.append(col(ExecutionRow.namespace).startswith(flt.namespace, autoescape=True))
    if flt.flow_id:
        conditions.append(col(ExecutionRow.flow_id) == flt.flow_id)
    if flt.q:
        conditions.append(
            col(ExecutionRow.flow_id).icontains(flt.q, autoescape=True)
            | col(ExecutionRow.id).startswith(flt.q, autoescape=True)
        )
    if flt.state:
        conditions.append(col(ExecutionRow.state) == flt.state)
    conditions.extend(flt.days.where(col(ExecutionRow.created_at)))
    with Session(engine) as session:
        total = session.exec(
            select(func.count()).select_from(ExecutionRow).where(*conditions)
        ).one()
        pages = max((total + PER_PAGE - 1) // PER_PAGE, 1)
        number = min(max(number, 1), pages)
        rows = session.exec(
            select(ExecutionRow)
            .where(*conditions)
            .order_by(col(ExecutionRow.created_at).desc())
            .offset((number - 1) * PER_PAGE)
            .limit(PER_PAGE)
        ).all()
    return Page(list(rows), int(total), number, PER_PAGE)


@dataclass(frozen=True)
class PlanFilter:
    """Plans: a status, a source prefix, text in the message, author or commit, days."""

    status: str = ""
    source: str = ""
    q: str = ""
    days: DateRange = field(default_factory=DateRange)


def plan_page(
    engine: Engine, principal: Principal, flt: PlanFilter, number: int = 1
) -> Page[PlanRow]:
    """One page of the plans the principal may see, newest first."""
    statement = select(PlanRow).order_by(col(PlanRow.created_at).desc()).limit(WINDOW)
    if flt.status:
        statement = statement.where(col(PlanRow.status) == flt.status)
    if flt.source:
        statement = statement.where(col(PlanRow.source_id).startswith(flt.source, autoescape=True))
    if flt.q:
        statement = statement.where(
            col(PlanRow.message).icontains(flt.q, autoescape=True)
            | col(PlanRow.author).icontains(flt.q, autoescape=True)
            | col(PlanRow.target_commit).startswith(flt.q.lower(), autoescape=True)
            | col(PlanRow.id).startswith(flt.q, autoescape=True)
        )
    statement = statement.where(*flt.days.where(col(PlanRow.created_at)))
    with Session(engine) as session:
        rows = session.exec(statement).all()
    visible = [row for row in rows if principal.can_see_all(touched_namespaces(row))]
    return page_of(visible, number, PER_PAGE, capped=len(rows) == WINDOW)


@dataclass(frozen=True)
class AuditFilter:
    """Audit events: an action prefix, text in the actor, a target prefix, days, a last event."""

    action: str = ""
    actor: str = ""
    target: str = ""
    days: DateRange = field(default_factory=DateRange)
    upto: int | None = None  # events at or before this position ("jump to" links)


def audit_page(
    engine: Engine, principal: Principal, flt: AuditFilter, number: int = 1
) -> Page[AuditEventRow]:
    """One page of audit events, newest first, about targets in the principal's namespaces."""
    statement = select(AuditEventRow).order_by(col(AuditEventRow.pk).desc()).limit(WINDOW)
    if flt.action:
        statement = statement.where(
            col(AuditEventRow.action).startswith(flt.action, autoescape=True)
        )
    if flt.actor:
        statement = statement.where(col(AuditEventRow.actor).icontains(flt.actor, autoescape=True))
    if flt.target:
        statement = statement.where(
            col(AuditEventRow.target).startswith(flt.target, autoescape=True)
        )
    if flt.upto is not None:
        statement = statement.where(col(AuditEventRow.pk) <= flt.upto)
    statement = statement.where(*flt.days.where(col(AuditEventRow.at)))
    with Session(engine) as session:
        rows = list(session.exec(statement).all())
        capped = len(rows) == WINDOW
        if not principal.unscoped:
            namespaces = target_namespaces(session, rows)
            rows = [
                row
                for row in rows
                if (touched := namespaces.get(row.target))
                and all(principal.can_see(namespace) for namespace in touched)
            ]
    return page_of(rows, number, PER_PAGE, capped=capped)


def audit_commit_links(engine: Engine, events: Sequence[AuditEventRow]) -> dict[int, str]:
    """Web links to the commit an event names (``summary.commit`` of a plan event), by event."""
    plan_ids = {
        row.target.partition(":")[2]
        for row in events
        if row.target.startswith("plan:") and row.summary.get("commit")
    }
    if not plan_ids:
        return {}
    with Session(engine) as session:
        plans = session.exec(select(PlanRow).where(col(PlanRow.id).in_(plan_ids))).all()
        urls = {row.id: row.url for row in session.exec(select(GitSourceRow)).all()}
    source_of = {plan.id: plan.source_id for plan in plans}
    links: dict[int, str] = {}
    for row in events:
        sha = row.summary.get("commit")
        plan_id = row.target.partition(":")[2]
        url = urls.get(source_of.get(plan_id, ""))
        link = commit_link(url, str(sha)) if url and sha else None
        if link and row.pk is not None:
            links[row.pk] = link
    return links
