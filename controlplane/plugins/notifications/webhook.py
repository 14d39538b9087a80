"""Posting a JSON payload to an incoming webhook (Slack, Teams, Discord) with httpx."""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import Field

from controlplane.domain.durations import parse_duration
from controlplane.domain.fields import DynDuration, StrictModel, Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError

_CONNECT, _READ = 10.0, 10.0  # Kestra's readTimeout default is 10 s


class RequestOptions(StrictModel):
    """Kestra's ``options`` of the HTTP client (the ones a single POST can honour)."""

    connectTimeout: DynDuration | None = None  # noqa: N815 - Kestra's field name
    readTimeout: DynDuration | None = None  # noqa: N815
    readIdleTimeout: DynDuration | None = None  # noqa: N815
    defaultCharset: Text = "UTF-8"  # noqa: N815
    headers: dict[str, Text] = Field(default_factory=dict)


class WebhookTask(TaskBase):
    """An incoming-webhook URL (usually a secret) and the client options."""

    url: Text
    options: RequestOptions | None = None

    def post(self, context: RunContext, payload: Any, service: str) -> None:
        """POST ``payload`` (a dict, or JSON text) to ``url``; fail on an error answer."""
        text = payload if isinstance(payload, str) else json.dumps(payload)
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise TaskFailedError(f"the {service} payload is not JSON: {exc}") from None
        options = self.options or RequestOptions()
        charset = str(context.render(options.defaultCharset))
        headers = {k: str(context.render(v)) for k, v in options.headers.items()}
        headers.setdefault("Content-Type", f"application/json; charset={charset}")
        read = _seconds(context, options.readTimeout, _READ)
        idle = _seconds(context, options.readIdleTimeout, read)
        timeout = httpx.Timeout(
            min(read, idle), connect=_seconds(context, options.connectTimeout, _CONNECT)
        )
        url = str(context.render(self.url))
        try:
            content = text.encode(charset)
        except LookupError:
            raise TaskFailedError(f"options.defaultCharset: unknown charset {charset!r}") from None
        try:
            response = httpx.post(url, content=content, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            # The worker masks the URL in logs when it came from secret().
            raise TaskFailedError(f"{service} webhook request failed: {exc}") from None
        if response.status_code >= 300:  # noqa: PLR2004 - only 2xx is a delivered message
            raise TaskFailedError(
                f"{service} webhook answered {response.status_code}: {response.text[:300]}"
            )
        context.log("INFO", f"{service} webhook answered {response.status_code}")


def _seconds(context: RunContext, value: str | None, default: float) -> float:
    if value is None:
        return default
    return parse_duration(str(context.render(value))).total_seconds()
