"""Authentication and per-route authorization for the API.

Every route under ``/api/v1`` declares the role it needs with ``require(role)``
(or is listed in ``PUBLIC_ROUTES`` because it checks its own signature);
``tests/api/test_access.py`` fails when a route declares neither.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controlplane.errors import ForbiddenError, UnauthorizedError
from controlplane.services.access import Principal, Role, authenticate_token, principal_from_proxy

_bearer = HTTPBearer(
    auto_error=False,
    description="An API token: `Authorization: Bearer fpt_…` (see /api/v1/tokens)",
)

# Routes that authenticate by other means: push webhooks carry an HMAC
# signature or shared token, and Kestra-style flow webhooks carry their key.
PUBLIC_ROUTES = {
    ("POST", "/api/v1/sources/{source_id}/webhook"),
    ("POST", "/api/v1/executions/webhook/{namespace}/{flow_id}/{key}"),
}


def authenticate(request: Request, token: str | None) -> Principal:
    """The caller: a bearer token, else a user vouched for by a trusted proxy; 401 otherwise."""
    app_state = request.app.state
    if token:
        return authenticate_token(app_state.engine, token)
    host = request.client.host if request.client else ""
    proxied = principal_from_proxy(app_state.settings, host, request.headers)
    if proxied is not None:
        return proxied
    raise UnauthorizedError("authentication required: send 'Authorization: Bearer <token>'")


def require(role: Role) -> Any:
    """A dependency that authenticates the request and checks it holds at least ``role``."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        principal = authenticate(request, credentials.credentials if credentials else None)
        if not principal.has_role(role):
            raise ForbiddenError(
                f"{principal.name!r} has role {principal.role}; this needs {role} or higher"
            )
        request.state.principal = principal
        structlog.contextvars.bind_contextvars(actor=principal.actor)
        return principal

    dependency.required_role = role  # type: ignore[attr-defined]  # read by the route audit test
    return Depends(dependency)


def check_unscoped(principal: Principal, what: str) -> None:
    """403 unless the principal sees every namespace (for data that spans namespaces)."""
    if not principal.unscoped:
        raise ForbiddenError(f"{what} spans namespaces; it needs a token scoped to '*'")


Viewer = Annotated[Principal, require("viewer")]
Editor = Annotated[Principal, require("editor")]
Reviewer = Annotated[Principal, require("reviewer")]
Admin = Annotated[Principal, require("admin")]
