"""``GET /api/v1/whoami``: which server this is, and who is asking.

Clients such as the Terraform provider call it once before anything else:

- ``product`` and ``server_id`` tell a Flowplane server from anything else
  answering at a mistyped URL, so a 404 there is never read as "deleted";
- ``server_id`` is random, made once per database and then stable, so a client
  can refuse to apply a plan made against another server;
- ``caller`` shows the token's name, role and namespace scopes.

The id is kept as a row of ``server_keys`` (name ``server-id``), the table that
already holds the server's public identity; no schema change was needed.
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from controlplane import __version__
from controlplane.api.auth import Viewer
from controlplane.api.deps import EngineDep
from controlplane.api.schemas import ErrorBody
from controlplane.errors import StoreError
from controlplane.store.db import transaction
from controlplane.store.tables import ServerKeyRow

router = APIRouter(prefix="/api/v1", tags=["whoami"])
SERVER_ID_ROW = "server-id"


class Caller(BaseModel):
    """The authenticated caller."""

    name: str = Field(description="The token's name, or the user a trusted proxy vouched for")
    role: str = Field(description="viewer, editor, reviewer or admin")
    scopes: list[str] = Field(description="Namespace globs the caller may see and change")


class WhoAmI(BaseModel):
    """The server's identity and the caller's."""

    product: Literal["flowplane"] = Field(description="Always `flowplane`")
    server_id: str = Field(description="Random, made once per database, then stable")
    version: str = Field(description="The server's version")
    caller: Caller


def server_id(engine: Engine) -> str:
    """The database's server id, made on first use."""
    try:
        return _get_or_make(engine)
    except StoreError:
        # Another process made it at the same moment (a duplicate key): read theirs.
        return _get_or_make(engine)


def _get_or_make(engine: Engine) -> str:
    with transaction(engine) as session:
        row = session.get(ServerKeyRow, SERVER_ID_ROW)
        if row is None:
            row = ServerKeyRow(name=SERVER_ID_ROW, recipient=f"fps_{uuid.uuid4().hex}")
            session.add(row)
        server: str = row.recipient
    return server


@router.get(
    "/whoami", response_model=WhoAmI, responses={code: {"model": ErrorBody} for code in (401, 403)}
)
def whoami(engine: EngineDep, principal: Viewer) -> WhoAmI:
    """Server id, version and the caller's name, role and scopes."""
    return WhoAmI(
        product="flowplane",
        server_id=server_id(engine),
        version=__version__,
        caller=Caller(name=principal.name, role=principal.role, scopes=list(principal.scopes)),
    )
