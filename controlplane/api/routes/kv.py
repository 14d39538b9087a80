"""``/api/v1/namespaces/{ns}/kv``: a namespace's key-value store, as flows see it.

The same rows Kestra's ``kv.Set``/``kv.Get`` tasks use. Editors write,
viewers read, and a scoped token reaches only its namespaces. A value the
runtime sealed (a string that carried a secret, stored as ``{"sealed": ...}``)
is shown masked with ``sealed: true``; the API never decrypts it. A value
shaped like a sealed one is refused on write: only the runtime seals, and a
copied ciphertext would otherwise be opened for its sender by ``kv.Get``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, Field, field_validator
from sqlmodel import Session, col, select

from controlplane.api.auth import Editor, Viewer
from controlplane.api.deps import EngineDep
from controlplane.api.schemas import ErrorBody, WriteModel
from controlplane.domain.fields import NAMESPACE_PATTERN
from controlplane.errors import NotFoundError
from controlplane.services.masking import mask_sealed
from controlplane.services.sealing import contains_sealed
from controlplane.store import kv as store
from controlplane.store.audit import record_event
from controlplane.store.db import as_utc, transaction
from controlplane.store.tables import KvEntryRow, utcnow

router = APIRouter(prefix="/api/v1/namespaces/{namespace}/kv", tags=["kv"])
# The key rule of the kv tasks (controlplane/plugins/kv/tasks.py): internal keys such
# as the ``state:`` documents never match it, so the API neither lists nor
# reaches them.
KEY_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"
_KEY = re.compile(KEY_PATTERN)
Namespace = Annotated[str, Path(pattern=NAMESPACE_PATTERN, max_length=150)]
Key = Annotated[str, Path(pattern=KEY_PATTERN, max_length=200)]
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 422)
}


class KvWrite(WriteModel):
    """A value (any JSON) and its description; a PUT replaces both and clears any expiry."""

    value: Any = Field(description="Any JSON value: text, number, boolean, list or object")
    description: str | None = None

    @field_validator("value")
    @classmethod
    def _not_sealed(cls, value: Any) -> Any:
        if contains_sealed(value):
            msg = "a value shaped like a sealed value ({'sealed': ...}) is reserved"
            raise ValueError(msg)
        return value


class KvPublic(BaseModel):
    """One entry; a sealed value (or part of one) is shown as ``******``."""

    namespace: str
    key: str
    value: Any
    sealed: bool = Field(description="True when the value holds a sealed secret, shown masked")
    description: str | None
    expires_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, row: KvEntryRow) -> KvPublic:
        """Build from a stored entry, masking what the runtime sealed."""
        return cls(
            namespace=row.namespace,
            key=row.key,
            value=mask_sealed(row.value),
            sealed=contains_sealed(row.value),
            description=row.description,
            expires_at=as_utc(row.expires_at) if row.expires_at else None,
            updated_at=as_utc(row.updated_at),
        )


@router.get("", response_model=list[KvPublic], responses=_ERRORS)
def list_entries(engine: EngineDep, principal: Viewer, namespace: Namespace) -> list[KvPublic]:
    """A namespace's live entries, by key (values masked where sealed)."""
    principal.check_namespace(namespace)
    now = utcnow()
    with Session(engine) as session:
        rows = session.exec(
            select(KvEntryRow)
            .where(col(KvEntryRow.namespace) == namespace)
            .order_by(col(KvEntryRow.key))
        ).all()
    return [
        KvPublic.of(r)
        for r in rows
        if _KEY.match(r.key) and (r.expires_at is None or as_utc(r.expires_at) > now)
    ]


@router.put("/{key}", response_model=KvPublic, responses={201: {"model": KvPublic}, **_ERRORS})
def put_entry(
    engine: EngineDep,
    principal: Editor,
    namespace: Namespace,
    key: Key,
    body: KvWrite,
    response: Response,
) -> KvPublic:
    """Create or replace an entry."""
    principal.check_namespace(namespace)
    with transaction(engine) as session:
        created = store.get_entry(session, namespace, key) is None
        row = store.put_entry(session, namespace, key, body.value, description=body.description)
        record_event(
            session,
            actor=principal.actor,
            action="kv.put",
            target=f"namespace:{namespace}",
            summary={"key": key, "created": created},
        )
        public = KvPublic.of(row)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return public


@router.get("/{key}", response_model=KvPublic, responses=_ERRORS)
def get_entry(engine: EngineDep, principal: Viewer, namespace: Namespace, key: Key) -> KvPublic:
    """One entry (masked where sealed); 404 when it is missing or expired."""
    principal.check_namespace(namespace)
    with transaction(engine) as session:
        # A transaction: reading an expired entry deletes it.
        row = store.get_entry(session, namespace, key)
        public = None if row is None else KvPublic.of(row)
    if public is None:
        raise NotFoundError(f"namespace {namespace} has no KV key {key}")
    return public


@router.delete("/{key}", status_code=204, responses=_ERRORS)
def delete_entry(engine: EngineDep, principal: Editor, namespace: Namespace, key: Key) -> Response:
    """Delete an entry; 404 when there is none."""
    principal.check_namespace(namespace)
    with transaction(engine) as session:
        if not store.delete_entry(session, namespace, key):
            raise NotFoundError(f"namespace {namespace} has no KV key {key}")
        record_event(
            session,
            actor=principal.actor,
            action="kv.delete",
            target=f"namespace:{namespace}",
            summary={"key": key},
        )
    return Response(status_code=204)
