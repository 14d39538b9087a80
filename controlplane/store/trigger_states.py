"""The runtime state of a flow's trigger: enabled or disabled outside its source.

A flow's source says whether a trigger is ``disabled``; Kestra's
``trigger.Toggle`` task (and its UI) switch a trigger on or off at run time
without a new revision. That switch is one row here per trigger that was ever
toggled; no row means "as the source says". The scheduler, the webhook
endpoint and the flow-trigger listener read it.

The table lives in its own module, as ``namespace_files`` does; importing the
module registers it on ``SQLModel.metadata``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlmodel import Field, Session, SQLModel, col, select

from controlplane.store.tables import utcnow

TriggerKey = tuple[str, str, str]  # namespace, flow id, trigger id


class TriggerStateRow(SQLModel, table=True):
    """Whether one trigger of a flow is switched off at run time, since when, by whom."""

    __tablename__ = "trigger_states"

    namespace: str = Field(primary_key=True, max_length=150)
    flow_id: str = Field(primary_key=True, max_length=100)
    trigger_id: str = Field(primary_key=True, max_length=100)
    disabled: bool = Field(default=False)
    updated_by: str = Field(max_length=200)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


def get_state(session: Session, key: TriggerKey) -> TriggerStateRow | None:
    """The trigger's runtime state, or None when it was never toggled."""
    return session.get(TriggerStateRow, key)


def disabled_keys(session: Session) -> set[TriggerKey]:
    """Every trigger switched off at run time."""
    rows = session.exec(
        select(
            TriggerStateRow.namespace, TriggerStateRow.flow_id, TriggerStateRow.trigger_id
        ).where(col(TriggerStateRow.disabled).is_(True))
    ).all()
    return {(ns, flow_id, trigger_id) for ns, flow_id, trigger_id in rows}


def enabled_at(session: Session, key: TriggerKey) -> datetime | None:
    """When a toggled trigger was last switched back on; None if never toggled, or off."""
    row = get_state(session, key)
    if row is None or row.disabled:
        return None
    # SQLite hands back naive datetimes; every stored time is UTC.
    stamp = row.updated_at
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def put_state(session: Session, key: TriggerKey, *, disabled: bool, actor: str) -> bool:
    """Record the trigger as ``disabled`` (or not); return whether that changed anything."""
    row = get_state(session, key)
    # Enabling a trigger never switched off changes nothing (and must not stamp
    # an enable time, which would drop the times the scheduler still owes it).
    if (row.disabled if row is not None else False) == disabled:
        return False
    if row is None:
        namespace, flow_id, trigger_id = key
        row = TriggerStateRow(
            namespace=namespace, flow_id=flow_id, trigger_id=trigger_id, updated_by=actor
        )
    row.disabled = disabled
    row.updated_by = actor
    row.updated_at = utcnow()
    session.add(row)
    return True
