"""What the HTTP tasks share: one request built from their properties, sent through httpx.

``http.Request`` reads the answer into its outputs, ``http.Download`` streams
it into a stored file; both take the same properties (``uri``, ``method``,
``headers``, ``body``, ``formData``, ``contentType``, ``options``,
``allowFailed``) and read them here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from controlplane.domain.durations import parse_duration
from controlplane.domain.tasktypes.http import HttpOptions
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.plugins.flow.values import positive_int, truthy

_DEFAULT_TIMEOUT = 60.0
# Kestra's default maxContentLength: the most body http.Request reads into memory.
DEFAULT_MAX_CONTENT = 10 * 1024 * 1024
_CHUNK = 64 * 1024


class HttpTask(Protocol):
    """The request properties an HTTP task type has."""

    @property
    def uri(self) -> str: ...  # noqa: D102
    @property
    def method(self) -> str: ...  # noqa: D102
    @property
    def headers(self) -> dict[str, str]: ...  # noqa: D102
    @property
    def body(self) -> str | None: ...  # noqa: D102
    @property
    def formData(self) -> dict[str, Any] | None: ...  # noqa: D102, N802 - Kestra's name
    @property
    def contentType(self) -> str | None: ...  # noqa: D102, N802
    @property
    def options(self) -> HttpOptions | None: ...  # noqa: D102
    @property
    def allowFailed(self) -> bool | str: ...  # noqa: D102, N802


@dataclass(frozen=True)
class Prepared:
    """A rendered request: what httpx is given, and whether an error status is allowed."""

    method: str
    url: str
    arguments: dict[str, Any]
    allow_failed: bool


def prepare(task: HttpTask, run: RunContext) -> Prepared:
    """Render the task's request properties into one httpx request."""
    options = task.options
    timeout = httpx.Timeout(_seconds(run, options.timeout if options else None, _DEFAULT_TIMEOUT))
    if options:
        timeout = httpx.Timeout(
            timeout.read,
            connect=_seconds(run, options.connectTimeout, timeout.connect),
            read=_seconds(run, options.readTimeout, timeout.read),
        )
    # A templated flag renders to text: "false" must read as false.
    follow = truthy(run.render(options.followRedirects)) if options else True
    allow_failed = truthy(run.render(task.allowFailed)) or bool(
        options and truthy(run.render(options.allowFailed))
    )
    headers = {k: str(v) for k, v in run.render(task.headers).items()}
    if task.contentType:
        headers.setdefault("Content-Type", str(run.render(task.contentType)))
    return Prepared(
        method=task.method,
        url=str(run.render(task.uri)),
        arguments={
            "headers": headers,
            "content": str(run.render(task.body)).encode() if task.body is not None else None,
            "data": run.render(task.formData) if task.formData else None,
            "timeout": timeout,
            "follow_redirects": follow,
        },
        allow_failed=allow_failed,
    )


def send(task: HttpTask, run: RunContext) -> tuple[httpx.Response, str]:
    """Send the request and read the answer as text; an error status fails the task.

    The body is read up to ``options.maxContentLength`` bytes (10 MiB by
    default): a longer one fails the task rather than the worker's memory.
    """
    limit = max_content_length(task, run)
    if limit is None:
        limit = DEFAULT_MAX_CONTENT
    body = bytearray()
    with stream(task, run) as response:  # a transport error while reading fails the task there
        for chunk in response.iter_bytes(_CHUNK):
            body += chunk
            check_size(len(body), limit, task)
    return response, body.decode(response.encoding or "utf-8", errors="replace")


def max_content_length(task: HttpTask, run: RunContext) -> int | None:
    """``options.maxContentLength`` rendered, or None when unset."""
    if task.options is None or task.options.maxContentLength is None:
        return None
    return positive_int(run.render(task.options.maxContentLength), "options.maxContentLength")


def check_size(size: int, limit: int | None, task: HttpTask) -> None:
    """Fail once the body read so far passes ``limit`` bytes."""
    if limit is not None and size > limit:
        raise TaskFailedError(
            f"the response of {task.method} {task.uri} is over {limit} bytes "
            "(options.maxContentLength)"
        )


@contextmanager
def stream(task: HttpTask, run: RunContext) -> Iterator[httpx.Response]:
    """Send the request and yield the answer before its body is read."""
    prepared = prepare(task, run)
    try:
        with httpx.stream(prepared.method, prepared.url, **prepared.arguments) as response:
            check_status(prepared, response, run)
            yield response
    except httpx.HTTPError as exc:
        raise TaskFailedError(f"{task.method} {task.uri} failed: {exc}") from None


def check_status(prepared: Prepared, response: httpx.Response, run: RunContext) -> None:
    """Log the answer; a status of 400 or more fails the task unless failures are allowed."""
    run.log("INFO", f"{prepared.method} {response.url} → {response.status_code}")
    if response.status_code >= 400 and not prepared.allow_failed:  # noqa: PLR2004 - HTTP errors
        message = f"{prepared.method} {response.url} answered {response.status_code}"
        raise TaskFailedError(message)


def header_lists(response: httpx.Response) -> dict[str, list[str]]:
    """The response headers, each a list of its values (Kestra's shape)."""
    return {k: response.headers.get_list(k) for k in response.headers}


def _seconds(run: RunContext, value: str | None, default: float | None) -> float | None:
    """A rendered duration in seconds, or ``default`` when the option is not given."""
    if value is None:
        return default
    return parse_duration(str(run.render(value))).total_seconds()
