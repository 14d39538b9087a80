"""Namespace files (Kestra's ``namespaceFiles``): bytes stored under a relative path.

The table lives in its own module so the rows and their queries stay
together; ``controlplane.store.db`` imports it, which registers the table on
``SQLModel.metadata`` wherever the store is loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Column, DateTime, LargeBinary
from sqlmodel import Field, Session, SQLModel, col, select

from controlplane.store.tables import utcnow


class NamespaceFileRow(SQLModel, table=True):
    """One file of a namespace; ``path`` is relative, with ``/`` between folders."""

    __tablename__ = "namespace_files"

    namespace: str = Field(primary_key=True, max_length=150)
    path: str = Field(primary_key=True, max_length=500)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sha256: str = Field(max_length=64)
    size: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


def get_file(session: Session, namespace: str, path: str) -> NamespaceFileRow | None:
    """The file at ``path``, or None."""
    return session.get(NamespaceFileRow, (namespace, path))


def list_files(session: Session, namespace: str) -> Sequence[NamespaceFileRow]:
    """Every file of ``namespace``, by path."""
    return session.exec(
        select(NamespaceFileRow)
        .where(col(NamespaceFileRow.namespace) == namespace)
        .order_by(col(NamespaceFileRow.path))
    ).all()


def put_file(
    session: Session, namespace: str, path: str, content: bytes
) -> tuple[NamespaceFileRow, bool, bool]:
    """Create or replace the file; (row, created, changed). The same bytes change nothing."""
    digest = hashlib.sha256(content).hexdigest()
    row = get_file(session, namespace, path)
    if row is not None and row.sha256 == digest:
        return row, False, False
    created = row is None
    if row is None:
        row = NamespaceFileRow(namespace=namespace, path=path, content=content, sha256="", size=0)
    row.content = content
    row.sha256 = digest
    row.size = len(content)
    row.updated_at = utcnow()
    session.add(row)
    return row, created, True


def delete_file(session: Session, namespace: str, path: str) -> bool:
    """Delete the file; False when there was none."""
    row = get_file(session, namespace, path)
    if row is None:
        return False
    session.delete(row)
    return True
