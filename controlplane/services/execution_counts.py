"""Counting executions per flow or per namespace (Kestra's ``execution.Count``).

The counts follow Kestra's repository: runs created between two times,
optionally only in some states, for listed flows (each listed flow gets a row,
0 when it has no run) and for listed namespaces (one row per namespace, summed
over its flows, with no flow id). Whether the caller may look into those
namespaces is checked by the caller (``ensure_namespace_allowed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, and_, func, or_
from sqlmodel import Session, col, select

from controlplane.store.tables import ExecutionRow

Count = tuple[str, str | None, int]  # namespace, flow id (None for a namespace), count


def count_executions(
    engine: Engine,
    *,
    flows: Sequence[tuple[str, str]],
    namespaces: Sequence[str],
    states: Sequence[str],
    start: datetime,
    end: datetime,
) -> list[Count]:
    """The flows' counts in the order given, then the namespaces' totals."""
    wanted = [
        and_(col(ExecutionRow.namespace) == ns, col(ExecutionRow.flow_id) == flow_id)
        for ns, flow_id in flows
    ] + [col(ExecutionRow.namespace) == ns for ns in namespaces]
    if not wanted:
        return []
    query = (
        select(ExecutionRow.namespace, ExecutionRow.flow_id, func.count())
        .where(
            # SQLite compares stored times as text: bind them in UTC like the stored ones.
            col(ExecutionRow.created_at) >= start.astimezone(UTC),
            col(ExecutionRow.created_at) <= end.astimezone(UTC),
            or_(*wanted),
        )
        .group_by(col(ExecutionRow.namespace), col(ExecutionRow.flow_id))
    )
    if states:
        query = query.where(col(ExecutionRow.state).in_(list(states)))
    with Session(engine) as session:
        found = {(ns, flow_id): int(n) for ns, flow_id, n in session.exec(query).all()}
    counts: list[Count] = [(ns, flow_id, found.get((ns, flow_id), 0)) for ns, flow_id in flows]
    totals: dict[str, int] = {}
    for (ns, _flow_id), n in found.items():
        if ns in namespaces:
            totals[ns] = totals.get(ns, 0) + n
    counts.extend((ns, None, totals[ns]) for ns in namespaces if ns in totals)
    return counts
