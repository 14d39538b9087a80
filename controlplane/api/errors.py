"""The one table from errors to HTTP responses.

Every error body has the same shape::

    {"code": "invalid_flow", "message": "...", "problems": [{file, line, column, path, message}]}

``problems`` is present for validation errors and lists every one found.

The same table documents itself: ``install_error_handlers`` adds to the OpenAPI
schema the error statuses any operation can answer because of what it declares
(a token: 401 and 403; parameters or a body: 422; a body: 400 and 413), so the
committed contract lists every status a route returns. Statuses only a route
knows (404, 409, 412 …) stay declared on the route.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from controlplane.errors import (
    ConflictError,
    FlowplaneError,
    ForbiddenError,
    IllegalTransitionError,
    InvalidFlowError,
    InvalidInputError,
    InvalidRequestError,
    NotFoundError,
    OwnershipConflictError,
    PayloadTooLargeError,
    PreconditionFailedError,
    Problem,
    SourceUnavailableError,
    StoreError,
    TooManyRequestsError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from controlplane.logging import get_logger

log = get_logger(__name__)

# Most specific first: the first matching class decides.
ERROR_TABLE: list[tuple[type[FlowplaneError], int, str]] = [
    (InvalidFlowError, 422, "invalid_flow"),
    (InvalidInputError, 422, "invalid_inputs"),
    (IllegalTransitionError, 409, "illegal_transition"),
    (PayloadTooLargeError, 413, "payload_too_large"),
    (UnsupportedMediaTypeError, 415, "unsupported_media_type"),
    (InvalidRequestError, 400, "invalid_request"),
    (UnauthorizedError, 401, "unauthorized"),
    (ForbiddenError, 403, "forbidden"),
    (NotFoundError, 404, "not_found"),
    (OwnershipConflictError, 409, "ownership_conflict"),
    (ConflictError, 409, "conflict"),
    (PreconditionFailedError, 412, "precondition_failed"),
    (TooManyRequestsError, 429, "too_many_requests"),
    (SourceUnavailableError, 502, "source_unavailable"),
    (StoreError, 503, "store_unavailable"),
    (FlowplaneError, 500, "internal_error"),
]


def error_body(code: str, message: str, problems: list[Problem] | None = None) -> dict[str, Any]:
    """The JSON error body shared by every failure."""
    body: dict[str, Any] = {"code": code, "message": message}
    if problems is not None:
        body["problems"] = [p.to_dict() for p in problems]
    return body


def status_for(exc: FlowplaneError) -> tuple[int, str]:
    """The HTTP status and error code for one of our errors."""
    for cls, status, code in ERROR_TABLE:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal_error"  # pragma: no cover - FlowplaneError is in the table


async def _flowplane_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FlowplaneError)  # noqa: S101 - registered for this class only
    status, code = status_for(exc)
    if status >= 500:  # noqa: PLR2004 - server-side failures are logged, client ones are not
        log.error("request_failed", code=code, error=str(exc))
    problems = exc.problems if isinstance(exc, InvalidFlowError | InvalidInputError) else None
    message = "the flow is invalid" if isinstance(exc, InvalidFlowError) else str(exc)
    # RFC 6750: a 401 names the scheme the client should use.
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, UnauthorizedError) else None
    if isinstance(exc, TooManyRequestsError):
        headers = {"Retry-After": "5"}
    return JSONResponse(error_body(code, message, problems), status_code=status, headers=headers)


async def _request_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    problems = [
        Problem(
            str(err.get("msg", "invalid")).removeprefix("Value error, "),
            path=".".join(str(p) for p in err.get("loc", ()) if p != "body"),
        )
        for err in exc.errors()
    ]
    message = "; ".join(p.render().removeprefix("<flow>: ") for p in problems)
    return JSONResponse(error_body("invalid_request", message, problems), status_code=422)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    code = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, "http_error"
    )
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


_ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorBody"}
_COMMON_ERRORS = {
    400: "The body could not be read: not UTF-8, or not the declared format",
    401: "No valid token: the request is not authenticated",
    403: "The token's role or namespace scopes do not allow this",
    413: "The request body is larger than the server accepts",
    422: "A parameter or the body is invalid; `problems` lists each one",
}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_SCHEMA}}}


def document_error_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the statuses every operation answers because of what it declares; in place.

    A 422 is always our ``ErrorBody``, never FastAPI's default validation shape.
    """
    for operation in _operations(schema):
        responses: dict[str, Any] = operation.setdefault("responses", {})
        statuses: list[int] = []
        if operation.get("security"):
            statuses += [401, 403]
        if operation.get("parameters") or "requestBody" in operation:
            statuses.append(422)
        if "requestBody" in operation:
            statuses += [400, 413]
        for status in statuses:
            # A description the route wrote stays; FastAPI's generic ones give way.
            description = responses.get(str(status), {}).get("description")
            if description in {None, HTTPStatus(status).phrase, "Validation Error"}:
                description = _COMMON_ERRORS[status]
            responses[str(status)] = _error_response(description)
    schemas = schema.get("components", {}).get("schemas", {})
    if not any(_uses_default_validation_error(op) for op in _operations(schema)):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return schema


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return [
        operation
        for item in schema.get("paths", {}).values()
        for method, operation in item.items()
        if method in methods
    ]


def _uses_default_validation_error(operation: dict[str, Any]) -> bool:
    return "HTTPValidationError" in str(operation.get("responses", {}))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that apply ``ERROR_TABLE``, and document their statuses."""
    app.add_exception_handler(FlowplaneError, _flowplane_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    build_schema: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI builds the schema once and caches it; document the errors that once.
        if app.openapi_schema is None:
            document_error_responses(build_schema())
        return app.openapi_schema or build_schema()

    app.openapi = openapi  # type: ignore[method-assign]
