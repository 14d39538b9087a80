"""API tokens, for admins: list, create (the secret is shown once, on this page only), revoke."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from controlplane.errors import ConflictError, ForbiddenError, InvalidRequestError
from controlplane.services import access
from controlplane.services.access import ROLES, Principal
from controlplane.ui.identity import Admin, engine_of
from controlplane.ui.rendering import page

router = APIRouter()


def _tokens_page(
    request: Request,
    principal: Principal,
    *,
    created: tuple[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "nav": "tokens",
        "tokens": access.list_tokens(engine_of(request), principal),
        "roles": ROLES,
        "created": created,
        "error": error,
    }
    response = page(request, "tokens.html", context, status_code=status_code)
    if created is not None:
        response.headers["Cache-Control"] = "no-store"  # the page holds a bearer secret
    return response


@router.get("/tokens")
def tokens_page(request: Request, principal: Admin) -> Response:
    """Live tokens with their role, scopes and expiry; never a secret."""
    return _tokens_page(request, principal)


@router.post("/tokens")
def create_token(
    request: Request,
    principal: Admin,
    *,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    role: Annotated[str, Form()],
    namespaces: Annotated[str, Form(max_length=2000)] = "*",
    expires_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Create a token and show its secret once, on the answer to this form only."""
    try:
        expires_at = (
            datetime.combine(datetime.fromisoformat(expires_on).date(), time(), tzinfo=UTC)
            if expires_on
            else None
        )
        row, secret = access.create_token(
            engine_of(request),
            name=name.strip(),
            role=access.parse_role(role),
            scopes=[s.strip() for s in namespaces.split(",") if s.strip()],
            expires_at=expires_at,
            actor=principal.actor,
            creator=principal,
        )
    except ValueError:
        error = "expiry must be a date (YYYY-MM-DD)"
        return _tokens_page(request, principal, error=error, status_code=400)
    except (InvalidRequestError, ConflictError, ForbiddenError) as exc:
        code = {ConflictError: 409, ForbiddenError: 403}.get(type(exc), 400)
        return _tokens_page(request, principal, error=str(exc), status_code=code)
    return _tokens_page(request, principal, created=(row.name, secret), status_code=201)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, principal: Admin, token_id: str) -> Response:
    """Revoke a token; it stops working at once, including any UI session signed in with it."""
    access.revoke_token(engine_of(request), token_id, actor=principal.actor, revoker=principal)
    base = str(request.scope.get("root_path", "")).rstrip("/")
    return RedirectResponse(f"{base}/tokens", status_code=303)
