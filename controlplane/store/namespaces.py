"""Queries on namespaces."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from controlplane.store.scopes import scope_condition
from controlplane.store.tables import FlowRow, NamespaceRow


def get_namespace(session: Session, name: str, *, lock: bool = False) -> NamespaceRow | None:
    """The namespace row, or None."""
    statement = select(NamespaceRow).where(NamespaceRow.name == name)
    if lock:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def list_namespaces(
    session: Session,
    *,
    prefix: str | None = None,
    scopes: Sequence[str] | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[Sequence[NamespaceRow], int]:
    """A page of namespaces ordered by name, and the total matching (within ``scopes``)."""
    statement = select(NamespaceRow)
    count = select(func.count()).select_from(NamespaceRow)
    scoped = scope_condition(col(NamespaceRow.name), scopes)
    if scoped is not None:
        statement = statement.where(scoped)
        count = count.where(scoped)
    if prefix:
        condition = (col(NamespaceRow.name) == prefix.rstrip(".")) | col(
            NamespaceRow.name
        ).startswith(prefix.rstrip(".") + ".")
        statement = statement.where(condition)
        count = count.where(condition)
    rows = session.exec(
        statement.order_by(col(NamespaceRow.name)).offset(offset).limit(limit)
    ).all()
    return rows, int(session.exec(count).one())


def count_active_flows(session: Session, namespace: str) -> int:
    """How many live (not deleted) flows the namespace holds."""
    statement = (
        select(func.count())
        .select_from(FlowRow)
        .where(FlowRow.namespace == namespace, col(FlowRow.deleted).is_(False))
    )
    return int(session.exec(statement).one())
