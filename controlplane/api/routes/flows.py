"""``/api/v1/flows``: flows and their revision history."""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from controlplane.api.auth import Viewer, require, run_read
from controlplane.api.deps import EngineDep, IfMatch, PageDep, ProvenanceDep
from controlplane.api.limits import MAX_DB_INT, Text
from controlplane.api.schemas import (
    ErrorBody,
    FlowContent,
    FlowList,
    FlowPublic,
    FlowSummary,
    ProblemOut,
    RevisionList,
    RevisionPublic,
    RevisionSummary,
    ValidationResult,
)
from controlplane.domain.fields import FLOW_ID_PATTERN, NAMESPACE_PATTERN
from controlplane.domain.normalize import spec_digest
from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError, InvalidRequestError, UnsupportedMediaTypeError
from controlplane.services import flows as service
from controlplane.store.flows import FlowFilter

router = APIRouter(prefix="/api/v1/flows", tags=["flows"])

Namespace = Annotated[str, Path(pattern=NAMESPACE_PATTERN, max_length=150)]
FlowId = Annotated[str, Path(pattern=FLOW_ID_PATTERN, max_length=100)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 404, 409, 412, 413, 415, 422)
}
_YAML_TYPES = {"application/x-yaml", "application/yaml", "text/yaml", "text/x-yaml"}
_SOURCE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": FlowContent.model_json_schema()},
            "application/x-yaml": {"schema": {"type": "string"}},
        },
    }
}


async def read_source(request: Request) -> str:
    """The flow source from a JSON ``{content}`` body or a raw YAML body."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(f"body is not valid UTF-8 (byte {exc.start})") from None
    if media_type in _YAML_TYPES:
        payload: Any = {"content": text}
    elif media_type == "application/json":
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(f"body is not valid JSON: {exc}") from None
    else:
        raise UnsupportedMediaTypeError(
            f"Content-Type {media_type or '(none)'} is not supported; send application/json "
            'with {"content": "..."} or application/x-yaml with the flow source'
        )
    # Both forms are checked by one model: a raw YAML body with a NUL is the same 422.
    try:
        return FlowContent.model_validate(payload).content
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


@router.get("", response_model=FlowList)
def list_flows(
    engine: EngineDep,
    principal: Viewer,
    page: PageDep,
    namespace: Annotated[Text | None, Query(description="Exactly this namespace")] = None,
    namespace_prefix: Annotated[
        Text | None, Query(description="This namespace and its children")
    ] = None,
    origin: Annotated[Text | None, Query(description="api, terraform or git:<source>")] = None,
    q: Annotated[Text | None, Query(max_length=100, description="Flow id contains")] = None,
) -> FlowList:
    """Live flows ordered by namespace and id."""
    flt = FlowFilter(
        namespace=namespace,
        namespace_prefix=namespace_prefix,
        origin=origin,
        query=q,
        scopes=principal.scopes,
    )
    states, total = service.list_flows(engine, flt, offset=page.offset, limit=page.limit)
    return FlowList(
        items=[FlowSummary.of(s) for s in states],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.post(
    "/validate",
    response_model=ValidationResult,
    responses=_ERRORS,
    openapi_extra=_SOURCE_BODY,
    dependencies=[require("viewer")],
)
async def validate(request: Request) -> ValidationResult:
    """Validate a flow source without storing it; every problem is listed."""
    source = await read_source(request)
    try:
        validated = await run_in_threadpool(validate_flow, source)
    except InvalidFlowError as exc:
        return ValidationResult(
            valid=False,
            problems=[ProblemOut(**p.to_dict()) for p in exc.problems],
        )
    return ValidationResult(
        valid=True,
        namespace=validated.namespace,
        id=validated.id,
        spec_sha256=spec_digest(validated.spec),
        problems=[],
    )


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


@router.get(
    "/{namespace}/{flow_id}",
    response_model=FlowPublic,
    responses={304: {"description": "If-None-Match names the current ETag"}, **_ERRORS},
)
async def get_flow(
    request: Request,
    principal: Viewer,
    namespace: Namespace,
    flow_id: FlowId,
    if_none_match: Annotated[
        str | None, Header(description="ETag(s) the caller holds: 304 when current")
    ] = None,
) -> Response:
    """The live flow: its source byte for byte, revision and ETag; 304 when unchanged."""
    principal.check_namespace(namespace)
    state = await run_read(
        request, partial(service.read_flow, namespace=namespace, flow_id=flow_id)
    )
    headers = {"ETag": state.etag}
    if etag_matches(if_none_match, state.etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    # Serialized once here; FastAPI would otherwise validate the model a second time.
    body = FlowPublic.of(state).model_dump_json()
    return Response(body, media_type="application/json", headers=headers)


@router.put(
    "/{namespace}/{flow_id}",
    response_model=FlowPublic,
    responses={201: {"model": FlowPublic}, **_ERRORS},
    openapi_extra=_SOURCE_BODY,
)
async def put_flow(
    request: Request,
    engine: EngineDep,
    namespace: Namespace,
    flow_id: FlowId,
    provenance: ProvenanceDep,
    response: Response,
    if_match: IfMatch = None,
) -> FlowPublic:
    """Create or update a flow. Identical content is a no-op: same revision, 200."""
    request.state.principal.check_namespace(namespace)
    source = await read_source(request)
    # Validation and the write run in the thread pool, off the event loop.
    result = await run_in_threadpool(
        partial(service.put_flow, engine, namespace, flow_id, source, provenance, if_match=if_match)
    )
    response.status_code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    response.headers["ETag"] = result.state.etag
    return FlowPublic.of(result.state)


@router.delete("/{namespace}/{flow_id}", status_code=204, responses=_ERRORS)
def delete_flow(
    request: Request,
    engine: EngineDep,
    namespace: Namespace,
    flow_id: FlowId,
    provenance: ProvenanceDep,
    if_match: IfMatch = None,
) -> Response:
    """Delete a flow; a tombstone revision keeps its history."""
    request.state.principal.check_namespace(namespace)
    service.delete_flow(engine, namespace, flow_id, provenance, if_match=if_match)
    return Response(status_code=204)


@router.get("/{namespace}/{flow_id}/revisions", response_model=RevisionList, responses=_ERRORS)
def list_revisions(
    engine: EngineDep, principal: Viewer, namespace: Namespace, flow_id: FlowId
) -> RevisionList:
    """Every revision, oldest first, tombstones included."""
    principal.check_namespace(namespace)
    rows = service.list_revisions(engine, namespace, flow_id)
    return RevisionList(items=[RevisionSummary.of(r) for r in rows])


@router.get(
    "/{namespace}/{flow_id}/revisions/{revision}", response_model=RevisionPublic, responses=_ERRORS
)
def get_revision(
    engine: EngineDep,
    principal: Viewer,
    namespace: Namespace,
    flow_id: FlowId,
    revision: Annotated[int, Path(ge=1, le=MAX_DB_INT)],
) -> RevisionPublic:
    """One revision with its source."""
    principal.check_namespace(namespace)
    return RevisionPublic.of(service.get_revision(engine, namespace, flow_id, revision))
