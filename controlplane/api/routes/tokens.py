"""``/api/v1/tokens``: API tokens, managed by admins. A token's secret is shown once.

An admin sees, makes and revokes only tokens no wider than its own (role and
namespace scopes), so a scoped admin cannot mint its way out of its scope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import AwareDatetime, BaseModel, Field

from controlplane.api.auth import Admin
from controlplane.api.deps import EngineDep
from controlplane.api.limits import Text
from controlplane.api.schemas import ErrorBody, WriteModel
from controlplane.services import access
from controlplane.services.access import Role
from controlplane.store.db import as_utc
from controlplane.store.tables import ApiTokenRow

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])

TokenId = Annotated[Text, Path(max_length=40)]
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409)
}


class TokenCreate(WriteModel):
    """A token to create."""

    # A person or system name; spaces allowed (Git author names have them).
    name: str = Field(min_length=1, max_length=200, pattern=r"^\S(?:[^\x00-\x1f]*\S)?$")
    role: Role
    namespaces: list[str] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        max_length=50,
        description="Namespace glob patterns the token may see and change, e.g. 'team-a.*'",
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="RFC 3339 time with offset; null for no expiry"
    )
    identities: list[Annotated[str, Field(min_length=3, max_length=300)]] = Field(
        default_factory=list,
        max_length=20,
        description="Verified e-mail addresses of the token's holder, vouched for by the "
        "admin; four-eyes review refuses approvals of their own commits",
    )


class TokenPublic(BaseModel):
    """A token's metadata; never its secret."""

    id: str
    name: str
    role: str
    namespaces: list[str]
    identities: list[str]
    expires_at: datetime | None
    created_at: datetime
    created_by: str | None

    @classmethod
    def of(cls, row: ApiTokenRow) -> TokenPublic:
        """The public view of a stored token."""
        return cls(
            id=row.id,
            name=row.name,
            role=row.role,
            namespaces=list(row.scopes),
            identities=list(row.identities or []),
            expires_at=as_utc(row.expires_at) if row.expires_at else None,
            created_at=as_utc(row.created_at),
            created_by=row.created_by,
        )


class TokenCreated(TokenPublic):
    """The creation answer: the only time the bearer secret is shown."""

    token: str = Field(description="The bearer secret; store it now, it cannot be read again")


@router.post("", response_model=TokenCreated, status_code=201, responses=_ERRORS)
def create_token(
    engine: EngineDep, principal: Admin, body: TokenCreate, response: Response
) -> TokenCreated:
    """Create a token, no wider than the caller's own, and show its secret once."""
    row, secret = access.create_token(
        engine,
        name=body.name,
        role=body.role,
        scopes=body.namespaces,
        expires_at=body.expires_at,
        actor=principal.actor,
        creator=principal,
        identities=body.identities,
    )
    response.headers["Cache-Control"] = "no-store"
    return TokenCreated(**TokenPublic.of(row).model_dump(), token=secret)


@router.get("", response_model=list[TokenPublic])
def list_tokens(engine: EngineDep, principal: Admin) -> list[TokenPublic]:
    """Live tokens no wider than the caller's, oldest first."""
    return [TokenPublic.of(r) for r in access.list_tokens(engine, principal)]


@router.get("/{token_id}", response_model=TokenPublic, responses=_ERRORS)
def get_token(engine: EngineDep, principal: Admin, token_id: TokenId) -> TokenPublic:
    """One live token; 404 once revoked, 403 when wider than the caller."""
    return TokenPublic.of(access.get_token(engine, token_id, principal))


@router.delete("/{token_id}", status_code=204, responses=_ERRORS)
def revoke_token(engine: EngineDep, principal: Admin, token_id: TokenId) -> Response:
    """Revoke a token no wider than the caller's; it stops working at once."""
    access.revoke_token(engine, token_id, actor=principal.actor, revoker=principal)
    return Response(status_code=204)
