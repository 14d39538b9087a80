"""What polling triggers keep: the keys they fired (once each, ever) and their small cursors.

``polling_fires`` is the exactly-once record: one row per (flow, trigger, key),
inserted in the transaction that creates the execution, so two servers polling
the same thing, or a crash between the poll and the run, never start two runs
for one key. ``polling_state`` holds the JSON value a trigger saves between
polls (``TriggerContext.save_state``).

The tables live in this module, as ``trigger_states`` and ``namespace_files``
do; importing it registers them on ``SQLModel.metadata``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from controlplane.store.tables import ExecutionRow, utcnow

# Longer keys are stored as their digest, so any key a plugin returns fits the column.
MAX_KEY_LENGTH = 200


class PollingFireRow(SQLModel, table=True):
    """One fire of a polling trigger: its dedup key and the execution it started."""

    __tablename__ = "polling_fires"
    __table_args__ = (
        UniqueConstraint(
            "namespace", "flow_id", "trigger_id", "fire_key", name="uq_polling_fires_once"
        ),
    )

    pk: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(max_length=150)
    flow_id: str = Field(max_length=100)
    trigger_id: str = Field(max_length=100)
    fire_key: str = Field(max_length=MAX_KEY_LENGTH)
    execution_id: str = Field(foreign_key="executions.id", max_length=36)
    fired_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class PollingStateRow(SQLModel, table=True):
    """The value a polling trigger saved for its next polls."""

    __tablename__ = "polling_state"

    namespace: str = Field(primary_key=True, max_length=150)
    flow_id: str = Field(primary_key=True, max_length=100)
    trigger_id: str = Field(primary_key=True, max_length=100)
    value: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


TriggerKey = tuple[str, str, str]  # namespace, flow id, trigger id


def stored_key(key: str) -> str:
    """The form a fire key is stored in: itself, or ``sha256:<hex>`` when too long."""
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def new_fire(trigger: TriggerKey, key: str, execution_id: str) -> PollingFireRow:
    """The row recording that ``trigger`` fired ``key`` (added in the run's transaction)."""
    namespace, flow_id, trigger_id = trigger
    return PollingFireRow(
        namespace=namespace,
        flow_id=flow_id,
        trigger_id=trigger_id,
        fire_key=stored_key(key),
        execution_id=execution_id,
    )


def has_fired(session: Session, trigger: TriggerKey, key: str) -> bool:
    """Whether ``trigger`` already fired ``key``."""
    namespace, flow_id, trigger_id = trigger
    row = session.exec(
        select(PollingFireRow.pk).where(
            col(PollingFireRow.namespace) == namespace,
            col(PollingFireRow.flow_id) == flow_id,
            col(PollingFireRow.trigger_id) == trigger_id,
            col(PollingFireRow.fire_key) == stored_key(key),
        )
    ).first()
    return row is not None


def ended_run(
    session: Session, trigger: TriggerKey, revision_pk: int, states: list[str]
) -> tuple[str, str] | None:
    """``(execution id, state)`` of a run the trigger started for the revision, in ``states``."""
    namespace, flow_id, trigger_id = trigger
    row = session.exec(
        select(ExecutionRow.id, ExecutionRow.state)
        .join(PollingFireRow, col(PollingFireRow.execution_id) == col(ExecutionRow.id))
        .where(
            col(PollingFireRow.namespace) == namespace,
            col(PollingFireRow.flow_id) == flow_id,
            col(PollingFireRow.trigger_id) == trigger_id,
            col(ExecutionRow.revision_pk) == revision_pk,
            col(ExecutionRow.state).in_(states),
        )
        .limit(1)
    ).first()
    return (row[0], row[1]) if row is not None else None


def load_state(session: Session, trigger: TriggerKey) -> Any:
    """The value the trigger saved, or None."""
    row = session.get(PollingStateRow, trigger)
    return row.value if row is not None else None


def save_state(session: Session, trigger: TriggerKey, value: Any) -> None:
    """Replace the value the trigger keeps between polls."""
    row = session.get(PollingStateRow, trigger)
    if row is None:
        namespace, flow_id, trigger_id = trigger
        row = PollingStateRow(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id)
    row.value = value
    row.updated_at = utcnow()
    session.add(row)
