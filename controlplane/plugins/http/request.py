"""The HTTP request task, through httpx (``client.py`` builds and sends the request)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from controlplane.domain.tasktypes import http
from controlplane.plugins.api import RunContext
from controlplane.plugins.http.client import header_lists, send


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

    A status of 400 or more fails the task unless ``allowFailed`` is true; a
    body over ``options.maxContentLength`` (10 MiB by default) fails it.
    """
    response, body = send(task, run)
    return {
        "code": response.status_code,
        "headers": header_lists(response),
        "body": body,
        "uri": str(response.url),
    }
