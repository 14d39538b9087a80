"""Namespaces: metadata that flows, secrets and access scopes hang from."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.errors import ConflictError, ForbiddenError, NotFoundError
from controlplane.services.preconditions import check_if_match
from controlplane.store import namespaces as store
from controlplane.store.audit import record_event
from controlplane.store.db import transaction
from controlplane.store.tables import NamespaceRow, utcnow


@dataclass(frozen=True)
class NamespaceInput:
    """The writable attributes of a namespace."""

    description: str | None = None
    labels: dict[str, Any] | None = None
    variables: dict[str, Any] | None = None
    # Caller namespaces (names or globs such as ``team.*``) allowed to act in this one.
    allowed_namespaces: list[str] | None = None


def namespace_etag(row: NamespaceRow) -> str:
    """Strong ETag: the namespace's version counter."""
    return f'"v{row.version}"'


def ensure_namespace(session: Session, name: str) -> NamespaceRow:
    """The namespace row, created empty when a flow arrives before it."""
    row = store.get_namespace(session, name)
    if row is None:
        row = NamespaceRow(name=name)
        session.add(row)
        session.flush()
    return row


def put_namespace(
    engine: Engine,
    name: str,
    data: NamespaceInput,
    *,
    if_match: str | None = None,
    actor: str,
) -> tuple[NamespaceRow, bool]:
    """Create or replace a namespace's attributes; returns the row and whether it was created.

    A PUT that changes nothing keeps the version, so repeated applies are no-ops.
    """
    with transaction(engine) as session:
        row = store.get_namespace(session, name, lock=True)
        check_if_match(if_match, namespace_etag(row) if row else None)
        created = row is None
        if row is None:
            row = NamespaceRow(name=name, version=0)
        wanted = (
            data.description,
            data.labels or {},
            data.variables or {},
            data.allowed_namespaces or [],
        )
        current = (row.description, row.labels, row.variables, row.allowed_namespaces)
        if created or current != wanted:
            row.description, row.labels, row.variables, row.allowed_namespaces = wanted
            row.version += 1
            row.updated_at = utcnow()
            session.add(row)
            session.flush()
            record_event(
                session,
                actor=actor,
                action="namespace.put",
                target=f"namespace:{name}",
                summary={"version": row.version, "allowed_namespaces": row.allowed_namespaces},
            )
        return row, created


def get_namespace(engine: Engine, name: str) -> NamespaceRow:
    """The namespace, or ``NotFoundError``."""
    with Session(engine) as session:
        row = store.get_namespace(session, name)
        if row is None:
            raise NotFoundError(f"namespace {name} does not exist")
        return row


def list_namespaces(
    engine: Engine,
    *,
    prefix: str | None,
    offset: int,
    limit: int,
    scopes: Sequence[str] | None = None,
) -> tuple[Sequence[NamespaceRow], int]:
    """A page of namespaces within ``scopes``, and the total."""
    with Session(engine) as session:
        return store.list_namespaces(
            session, prefix=prefix, scopes=scopes, offset=offset, limit=limit
        )


def delete_namespace(engine: Engine, name: str, *, actor: str, if_match: str | None = None) -> None:
    """Delete an empty namespace; one that still holds flows is a conflict."""
    with transaction(engine) as session:
        row = store.get_namespace(session, name, lock=True)
        if row is None:
            raise NotFoundError(f"namespace {name} does not exist")
        check_if_match(if_match, namespace_etag(row))
        flows = store.count_active_flows(session, name)
        if flows:
            raise ConflictError(f"namespace {name} still holds {flows} flow(s); delete them first")
        session.delete(row)
        record_event(
            session, actor=actor, action="namespace.delete", target=f"namespace:{name}", summary={}
        )


def ensure_namespace_allowed(engine: Engine, caller: str, target: str, action: str) -> None:
    """Raise ``ForbiddenError`` unless a flow of ``caller`` may do ``action`` in ``target``.

    A flow always acts in its own namespace. Any other namespace must list the
    caller (by name or glob) in its ``allowed_namespaces``; a namespace without
    a row, or with an empty list, lets no other namespace in. The runtime calls
    this before every cross-namespace action (KV, Resume, log.Fetch, Subflow,
    flow triggers), so a run never acts with more rights than its namespace.
    """
    if caller == target:
        return
    with Session(engine) as session:
        row = store.get_namespace(session, target)
        allowed = list(row.allowed_namespaces) if row is not None else []
    if not any(fnmatch.fnmatchcase(caller, pattern) for pattern in allowed):
        raise ForbiddenError(
            f"namespace {target} does not allow flows from {caller} to {action} (allowedNamespaces)"
        )
