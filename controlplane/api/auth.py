"""Authentication and per-route authorization for the API.

Every route under ``/api/v1`` declares the role it needs with ``require(role)``
(or is listed in ``PUBLIC_ROUTES`` because it checks its own signature);
``tests/api/test_access.py`` fails when a route declares neither.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine, create_engine
from starlette.concurrency import run_in_threadpool

from controlplane.errors import ForbiddenError, UnauthorizedError
from controlplane.services.access import Principal, Role, TokenCache, principal_from_proxy

_T = TypeVar("_T")
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


def read_engine(request: Request) -> Engine:
    """An engine for single-statement reads, made on first use (one per app).

    On a SQLite file, the main engine opens every transaction with ``BEGIN
    IMMEDIATE`` (the write lock, so writers queue), which would also make
    every read wait for the writer and for each other. This engine has its
    own pool and no such listener: each SELECT runs on its own WAL snapshot
    and never waits for a writer. Other databases use the main engine.
    """
    state = request.app.state
    reader: Engine | None = getattr(state, "read_engine", None)
    if reader is None:
        engine: Engine = state.engine
        database = engine.url.database
        if engine.dialect.name != "sqlite" or not database or database == ":memory:":
            reader = engine
        else:
            reader = create_engine(
                engine.url,
                connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=20,
                max_overflow=40,
            )
        state.read_engine = reader
    return reader


async def run_read(request: Request, read: Callable[[Engine], _T]) -> _T:
    """Run a short single-statement ``read`` against ``read_engine``, on the loop when cheap.

    A read on the SQLite reader never waits for a writer (WAL), so it runs on
    the event loop: no thread hop, and no pile of threads fighting over the
    GIL, which is what made reads slow under load. Reads over a network
    (PostgreSQL) go to the thread pool so a slow database never stalls the loop.
    """
    reader = read_engine(request)
    if reader.dialect.name == "sqlite":
        return read(reader)
    return await run_in_threadpool(read, reader)


def token_cache(request: Request) -> TokenCache:
    """The app's token cache, made on first use (one per app, so one per engine)."""
    state = request.app.state
    cache: TokenCache | None = getattr(state, "token_cache", None)
    if cache is None:
        cache = state.token_cache = TokenCache(read_engine(request))
    return cache


async def authenticate(request: Request, token: str | None) -> Principal:
    """The caller: a bearer token, else a user vouched for by a trusted proxy; 401 otherwise.

    A token the cache knows is answered on the event loop, with no database
    round trip and no thread hop; anything else goes to the thread pool.
    """
    app_state = request.app.state
    if token:
        cache = token_cache(request)
        if cache.cheap:
            found = cache.cached(token)
            if found is not None:
                return found
            return await run_in_threadpool(partial(cache.authenticate, token, looked_up=True))
        return await run_in_threadpool(cache.authenticate, token)
    host = request.client.host if request.client else ""
    proxied = principal_from_proxy(app_state.settings, host, request.headers)
    if proxied is not None:
        return proxied
    raise UnauthorizedError("authentication required: send 'Authorization: Bearer <token>'")


def require(role: Role) -> Any:
    """A dependency that authenticates the request and checks it holds at least ``role``."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        principal = await authenticate(request, credentials.credentials if credentials else None)
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
