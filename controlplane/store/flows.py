"""Queries on flows and their revisions. Rules about *when* to write live in services."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from controlplane.store.scopes import scope_condition
from controlplane.store.tables import FlowRevisionRow, FlowRow, utcnow

# The join of a flow to its live revision (the one its ``revision`` points at).
LIVE_REVISION = (col(FlowRevisionRow.flow_pk) == col(FlowRow.pk)) & (
    col(FlowRevisionRow.revision) == col(FlowRow.revision)
)


@dataclass(frozen=True)
class FlowFilter:
    """Filters for listing flows; ``None`` means no filter."""

    namespace: str | None = None
    namespace_prefix: str | None = None
    origin: str | None = None
    query: str | None = None
    include_deleted: bool = False
    scopes: tuple[str, ...] | None = None  # namespace globs the caller may see


def get_flow_row(
    session: Session, namespace: str, flow_id: str, *, lock: bool = False
) -> FlowRow | None:
    """The flow row, deleted or not; ``lock`` takes a row lock on PostgreSQL."""
    statement = select(FlowRow).where(
        col(FlowRow.namespace) == namespace, col(FlowRow.flow_id) == flow_id
    )
    if lock:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def get_live(
    session: Session, namespace: str, flow_id: str, *, lock: bool = False
) -> tuple[FlowRow | None, FlowRevisionRow | None]:
    """The flow row (deleted or not, None if never written) and its live revision.

    The revision is None when the flow does not exist or is deleted.
    """
    flow = get_flow_row(session, namespace, flow_id, lock=lock)
    if flow is None or flow.deleted or flow.pk is None:
        return flow, None
    return flow, get_revision(session, flow.pk, flow.revision)


def get_revision(session: Session, flow_pk: int, revision: int) -> FlowRevisionRow | None:
    """One revision of a flow."""
    statement = select(FlowRevisionRow).where(
        FlowRevisionRow.flow_pk == flow_pk, FlowRevisionRow.revision == revision
    )
    return session.exec(statement).first()


def list_revisions(session: Session, flow_pk: int) -> Sequence[FlowRevisionRow]:
    """Every revision of a flow, oldest first, tombstones included."""
    statement = (
        select(FlowRevisionRow)
        .where(FlowRevisionRow.flow_pk == flow_pk)
        .order_by(col(FlowRevisionRow.revision))
    )
    return session.exec(statement).all()


def list_active(
    session: Session, flt: FlowFilter, *, offset: int = 0, limit: int = 100
) -> tuple[list[tuple[FlowRow, FlowRevisionRow]], int]:
    """A page of flows with their current revision, and the total matching."""
    statement = select(FlowRow, FlowRevisionRow).join(FlowRevisionRow, LIVE_REVISION)
    count = select(func.count()).select_from(FlowRow)
    conditions: list[ColumnElement[bool]] = []
    if not flt.include_deleted:
        conditions.append(col(FlowRow.deleted).is_(False))
    if flt.namespace is not None:
        conditions.append(col(FlowRow.namespace) == flt.namespace)
    if flt.namespace_prefix is not None:
        prefix = flt.namespace_prefix.rstrip(".")
        conditions.append(
            (col(FlowRow.namespace) == prefix) | col(FlowRow.namespace).startswith(prefix + ".")
        )
    if flt.origin is not None:
        conditions.append(col(FlowRow.origin) == flt.origin)
    scoped = scope_condition(col(FlowRow.namespace), flt.scopes)
    if scoped is not None:
        conditions.append(scoped)
    if flt.query:
        conditions.append(col(FlowRow.flow_id).contains(flt.query))
    for condition in conditions:
        statement = statement.where(condition)
        count = count.where(condition)
    statement = (
        statement.order_by(col(FlowRow.namespace), col(FlowRow.flow_id)).offset(offset).limit(limit)
    )
    rows = [(flow, revision) for flow, revision in session.exec(statement).all()]
    total = session.exec(count).one()
    return rows, int(total)


def live_sources_like(session: Session, *needles: str) -> list[tuple[str, str, str]]:
    """(namespace, flow id, source) of every live flow whose source contains one of ``needles``.

    A narrow read for hot paths (a run's end looks for Flow-trigger listeners):
    three columns, filtered in SQL, no ORM rows and no parsed spec.
    """
    statement = _sources_like(needles)
    return [(namespace, flow_id, source) for namespace, flow_id, source in session.exec(statement)]


@lru_cache(maxsize=8)
def _sources_like(needles: tuple[str, ...]) -> Select[str, str, str]:
    # Built once per set of needles: building it cost more than running it.
    return (
        select(col(FlowRow.namespace), col(FlowRow.flow_id), col(FlowRevisionRow.source))
        .join(FlowRevisionRow, LIVE_REVISION)
        .where(col(FlowRow.deleted).is_(False))
        .where(or_(*(col(FlowRevisionRow.source).contains(needle) for needle in needles)))
        .order_by(col(FlowRow.namespace), col(FlowRow.flow_id))
    )


def insert_revision(session: Session, flow: FlowRow, revision: FlowRevisionRow) -> None:
    """Append ``revision`` and point ``flow`` at it, in the caller's transaction."""
    flow.revision = revision.revision
    flow.deleted = revision.deleted
    flow.origin = revision.origin
    flow.updated_at = utcnow()
    session.add(flow)
    session.flush()  # assigns flow.pk for a new flow
    assert flow.pk is not None  # noqa: S101 - flush assigned it
    revision.flow_pk = flow.pk
    session.add(revision)
    session.flush()
