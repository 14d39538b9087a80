"""The one table from errors to HTTP responses.

Every error body has the same shape::

    {"code": "invalid_flow", "message": "...", "problems": [{file, line, column, path, message}]}

``problems`` is present for validation errors and lists every one found.
"""

from __future__ import annotations

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
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that apply ``ERROR_TABLE``."""
    app.add_exception_handler(FlowplaneError, _flowplane_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
