"""``/api/v1/namespaces``: namespace metadata."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from controlplane.api.auth import Editor, Viewer
from controlplane.api.deps import EngineDep, IfMatch, PageDep
from controlplane.api.limits import Text
from controlplane.api.schemas import ErrorBody, NamespaceList, NamespacePublic, NamespaceWrite
from controlplane.domain.fields import NAMESPACE_PATTERN
from controlplane.services import namespaces as service

router = APIRouter(prefix="/api/v1/namespaces", tags=["namespaces"])

NamespaceName = Annotated[str, Path(pattern=NAMESPACE_PATTERN, max_length=150)]
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (404, 409, 412, 422)
}


@router.get("", response_model=NamespaceList)
def list_namespaces(
    engine: EngineDep,
    principal: Viewer,
    page: PageDep,
    prefix: Annotated[Text | None, Query(description="Namespace and its children")] = None,
) -> NamespaceList:
    """Namespaces ordered by name, within the caller's scopes."""
    rows, total = service.list_namespaces(
        engine, prefix=prefix, offset=page.offset, limit=page.limit, scopes=principal.scopes
    )
    return NamespaceList(
        items=[NamespacePublic.of(r) for r in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/{name}", response_model=NamespacePublic, responses=_ERRORS)
def get_namespace(
    engine: EngineDep, principal: Viewer, name: NamespaceName, response: Response
) -> NamespacePublic:
    """One namespace, with its ETag."""
    principal.check_namespace(name)
    row = service.get_namespace(engine, name)
    response.headers["ETag"] = service.namespace_etag(row)
    return NamespacePublic.of(row)


@router.put(
    "/{name}",
    response_model=NamespacePublic,
    responses={201: {"model": NamespacePublic}, **_ERRORS},
)
def put_namespace(
    engine: EngineDep,
    principal: Editor,
    name: NamespaceName,
    body: NamespaceWrite,
    response: Response,
    if_match: IfMatch = None,
) -> NamespacePublic:
    """Create or replace a namespace. An identical PUT changes nothing."""
    principal.check_namespace(name)
    row, created = service.put_namespace(
        engine,
        name,
        service.NamespaceInput(
            body.description, body.labels, body.variables, body.allowed_namespaces
        ),
        if_match=if_match,
        actor=principal.actor,
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["ETag"] = service.namespace_etag(row)
    return NamespacePublic.of(row)


@router.delete("/{name}", status_code=204, responses=_ERRORS)
def delete_namespace(
    engine: EngineDep, principal: Editor, name: NamespaceName, if_match: IfMatch = None
) -> Response:
    """Delete an empty namespace."""
    principal.check_namespace(name)
    service.delete_namespace(engine, name, if_match=if_match, actor=principal.actor)
    return Response(status_code=204)
