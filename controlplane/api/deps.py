"""FastAPI dependencies, as ``Annotated`` aliases the routes use directly."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query, Request
from sqlalchemy import Engine

from controlplane.api.auth import Editor
from controlplane.api.limits import MAX_DB_INT
from controlplane.errors import InvalidRequestError
from controlplane.services.flows import Provenance
from controlplane.services.secrets import Keyring
from controlplane.settings import Settings

_CLIENT_ORIGINS = {"api", "terraform"}


def get_engine(request: Request) -> Engine:
    """The database engine created by ``create_app``."""
    engine: Engine = request.app.state.engine
    return engine


def get_keyring(request: Request) -> Keyring:
    """The server's age identity, loaded once by ``create_app``."""
    keyring: Keyring = request.app.state.keyring
    return keyring


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_provenance(
    principal: Editor,
    x_flowplane_origin: Annotated[str | None, Header()] = None,
) -> Provenance:
    """Who is writing: the origin a client declares (api or terraform) and the caller's identity.

    The actor is the authenticated principal (the token's name), so a revision
    names the token that wrote it. ``git:<source>`` origins are written by the
    reconciler only, never by a client.
    """
    origin = (x_flowplane_origin or "api").strip()
    if origin not in _CLIENT_ORIGINS:
        raise InvalidRequestError(
            f"X-Flowplane-Origin must be one of {sorted(_CLIENT_ORIGINS)}, not {origin!r}"
        )
    return Provenance(origin=origin, actor=principal.actor, token_id=principal.token_id)


class Page:
    """Offset pagination parameters."""

    def __init__(
        self,
        offset: Annotated[int, Query(ge=0, le=MAX_DB_INT, description="Items to skip")] = 0,
        limit: Annotated[int, Query(ge=1, le=500, description="Items per page")] = 100,
    ) -> None:
        self.offset = offset
        self.limit = limit


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ProvenanceDep = Annotated[Provenance, Depends(get_provenance)]
PageDep = Annotated[Page, Depends()]
IfMatch = Annotated[str | None, Header(description="ETag the write is conditional on")]
