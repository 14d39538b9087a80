"""The HTTP request task, through httpx."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from controlplane.domain.durations import parse_duration
from controlplane.domain.tasktypes import http
from controlplane.plugins.api import RunContext, TaskFailedError

_DEFAULT_TIMEOUT = 60.0


class Request(http.Request):
    """Send one HTTP request; outputs the status code, headers and body."""

    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "code": "the status code",
        "headers": "the response headers (each a list of values)",
        "body": "the response body as text",
        "uri": "the final URL, after redirects",
    }

    def run(self, context: RunContext) -> dict[str, Any]:
        """Send the request (``run_request``)."""
        return run_request(self, context)


def run_request(task: http.Request, run: RunContext) -> dict[str, Any]:
    """Send the request; outputs ``code``, ``headers`` and ``body``.

    A status of 400 or more fails the task unless ``allowFailed`` is true.
    """
    options = task.options
    timeout = httpx.Timeout(_seconds(run, options.timeout if options else None, _DEFAULT_TIMEOUT))
    if options:
        timeout = httpx.Timeout(
            timeout.read,
            connect=_seconds(run, options.connectTimeout, timeout.connect),
            read=_seconds(run, options.readTimeout, timeout.read),
        )
    follow = bool(run.render(options.followRedirects)) if options else True
    allow_failed = bool(run.render(task.allowFailed)) or bool(
        options and run.render(options.allowFailed)
    )
    headers = {k: str(v) for k, v in run.render(task.headers).items()}
    if task.contentType:
        headers.setdefault("Content-Type", str(run.render(task.contentType)))
    try:
        response = httpx.request(
            task.method,
            str(run.render(task.uri)),
            headers=headers,
            content=str(run.render(task.body)).encode() if task.body is not None else None,
            data=run.render(task.formData) if task.formData else None,
            timeout=timeout,
            follow_redirects=follow,
        )
    except httpx.HTTPError as exc:
        raise TaskFailedError(f"{task.method} {task.uri} failed: {exc}") from None
    run.log("INFO", f"{task.method} {response.url} → {response.status_code}")
    if response.status_code >= 400 and not allow_failed:  # noqa: PLR2004 - HTTP client errors
        raise TaskFailedError(f"{task.method} {response.url} answered {response.status_code}")
    return {
        "code": response.status_code,
        "headers": {k: response.headers.get_list(k) for k in response.headers},
        "body": response.text,
        "uri": str(response.url),
    }


def _seconds(run: RunContext, value: str | None, default: float | None) -> float | None:
    """A rendered duration in seconds, or ``default`` when the option is not given."""
    if value is None:
        return default
    return parse_duration(str(run.render(value))).total_seconds()
