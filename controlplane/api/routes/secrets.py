"""``/api/v1/namespaces/{ns}/secrets``: write-only namespace secrets.

Responses carry the key, description, origin and a version that grows with
every change, never the value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from pydantic import BaseModel, Field

from controlplane.api.auth import Editor, Viewer, require
from controlplane.api.deps import EngineDep, ProvenanceDep, get_keyring
from controlplane.api.schemas import ErrorBody, WriteModel
from controlplane.domain.fields import NAMESPACE_PATTERN
from controlplane.services import secrets as service
from controlplane.store.db import as_utc
from controlplane.store.tables import SecretRow

router = APIRouter(prefix="/api/v1/namespaces/{namespace}/secrets", tags=["secrets"])
recipient_router = APIRouter(prefix="/api/v1/secrets", tags=["secrets"])
Namespace = Annotated[str, Path(pattern=NAMESPACE_PATTERN, max_length=150)]
Key = Annotated[str, Path(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=200)]
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 404, 422)
}


class SecretWrite(WriteModel):
    """A secret value (write-only) and its description."""

    value: Annotated[str, Field(min_length=1, max_length=65_536)]
    description: str | None = None


class SecretPublic(BaseModel):
    """A secret's metadata; the value is never returned."""

    namespace: str
    key: str
    description: str | None
    origin: str
    version: int = Field(description="Grows with every change, so out-of-band rotation shows")
    updated_at: datetime

    @classmethod
    def of(cls, row: SecretRow) -> SecretPublic:
        """Build from a stored secret, leaving the ciphertext behind."""
        return cls(
            namespace=row.namespace,
            key=row.key,
            description=row.description,
            origin=row.origin,
            version=row.version,
            updated_at=as_utc(row.updated_at),
        )


@router.get("", response_model=list[SecretPublic])
def list_secrets(engine: EngineDep, principal: Viewer, namespace: Namespace) -> list[SecretPublic]:
    """A namespace's secrets (metadata only)."""
    principal.check_namespace(namespace)
    return [SecretPublic.of(r) for r in service.list_secrets(engine, namespace)]


@router.put(
    "/{key}", response_model=SecretPublic, responses={201: {"model": SecretPublic}, **_ERRORS}
)
def put_secret(
    request: Request,
    engine: EngineDep,
    namespace: Namespace,
    key: Key,
    body: SecretWrite,
    provenance: ProvenanceDep,
    response: Response,
) -> SecretPublic:
    """Create or replace a secret; the same value again keeps the version."""
    request.state.principal.check_namespace(namespace)
    row, created = service.put_secret(
        engine,
        get_keyring(request),
        namespace,
        key,
        body.value,
        description=body.description,
        origin=provenance.origin,
        actor=provenance.actor or provenance.origin,
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return SecretPublic.of(row)


@router.get("/{key}", response_model=SecretPublic, responses=_ERRORS)
def get_secret(
    engine: EngineDep, principal: Viewer, namespace: Namespace, key: Key
) -> SecretPublic:
    """A secret's metadata."""
    principal.check_namespace(namespace)
    return SecretPublic.of(service.get_secret_metadata(engine, namespace, key))


@router.delete("/{key}", status_code=204, responses=_ERRORS)
def delete_secret(engine: EngineDep, principal: Editor, namespace: Namespace, key: Key) -> Response:
    """Delete a secret."""
    principal.check_namespace(namespace)
    service.delete_secret(engine, namespace, key, actor=principal.actor)
    return Response(status_code=204)


class Recipient(BaseModel):
    """The server's public age key: encrypt ``secrets/<namespace>.age`` files to it."""

    recipient: str


@recipient_router.get("/recipient", response_model=Recipient, dependencies=[require("viewer")])
def get_recipient(request: Request) -> Recipient:
    """The age recipient the server decrypts Git secrets with (a public key, safe to share)."""
    return Recipient(recipient=get_keyring(request).recipient)
