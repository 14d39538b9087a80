"""The per-namespace key-value store behind Kestra's ``kv`` and ``state`` tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from controlplane.store.db import as_utc
from controlplane.store.tables import KvEntryRow, utcnow


def get_entry(session: Session, namespace: str, key: str) -> KvEntryRow | None:
    """The live entry under ``key``; an expired one is deleted and reads as missing."""
    entry = session.get(KvEntryRow, (namespace, key))
    if entry is not None and entry.expires_at is not None and as_utc(entry.expires_at) <= utcnow():
        session.delete(entry)
        return None
    return entry


def put_entry(
    session: Session,
    namespace: str,
    key: str,
    value: Any,
    *,
    expires_at: datetime | None = None,
    description: str | None = None,
) -> KvEntryRow:
    """Create or replace the entry under ``key``."""
    entry = get_entry(session, namespace, key)
    if entry is None:
        entry = KvEntryRow(namespace=namespace, key=key)
    entry.value = value
    entry.expires_at = expires_at
    entry.description = description
    entry.updated_at = utcnow()
    session.add(entry)
    return entry


def delete_entry(session: Session, namespace: str, key: str) -> bool:
    """Delete the entry under ``key``; False when there was none."""
    entry = get_entry(session, namespace, key)
    if entry is None:
        return False
    session.delete(entry)
    return True
