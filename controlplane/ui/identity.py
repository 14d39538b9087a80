"""Who is looking at the page: the session's token, re-checked on every request, or a proxy.

A revoked or expired token ends the session at the next request. Roles and
namespace scopes are checked here, so every page asks the same questions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from controlplane.errors import ForbiddenError, UnauthorizedError
from controlplane.services.access import (
    Principal,
    Role,
    principal_for_token_id,
    principal_from_proxy,
)
from controlplane.settings import Settings
from controlplane.ui.session import sign_out, signed_in_token_id


def engine_of(request: Request) -> Engine:
    """The database engine of the app the UI is mounted in."""
    engine: Engine = request.app.state.host.engine
    return engine


def settings_of(request: Request) -> Settings:
    """The settings of the app the UI is mounted in."""
    settings: Settings = request.app.state.host.settings
    return settings


def principal_of(request: Request) -> Principal | None:
    """The signed-in principal, or one vouched for by a trusted proxy, or None."""
    token_id = signed_in_token_id(request)
    if token_id is not None:
        try:
            return principal_for_token_id(engine_of(request), token_id)
        except UnauthorizedError:
            sign_out(request)
    host = request.client.host if request.client else ""
    try:
        return principal_from_proxy(settings_of(request), host, request.headers)
    except UnauthorizedError:
        return None


def require(role: Role) -> Callable[[Request], Principal]:
    """A dependency: the principal, who must hold at least ``role``.

    Nobody signed in is ``UnauthorizedError`` (the UI sends them to sign in);
    a role too low is ``ForbiddenError`` (403).
    """

    def dependency(request: Request) -> Principal:
        principal = principal_of(request)
        if principal is None:
            raise UnauthorizedError("sign in to continue")
        if not principal.has_role(role):
            raise ForbiddenError(
                f"this needs the {role} role; {principal.name} is {principal.role}"
            )
        request.state.principal = principal
        return principal

    return dependency


Viewer = Annotated[Principal, Depends(require("viewer"))]
Editor = Annotated[Principal, Depends(require("editor"))]
Reviewer = Annotated[Principal, Depends(require("reviewer"))]
Admin = Annotated[Principal, Depends(require("admin"))]
