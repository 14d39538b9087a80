"""The HTTP request task."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from controlplane.domain.fields import DynBool, DynDuration, DynInt, StrictModel, Text
from controlplane.domain.tasktypes.base import TaskBase


class HttpOptions(StrictModel):
    """Client options, grouped as Kestra groups them."""

    timeout: DynDuration | None = None
    connectTimeout: DynDuration | None = None  # noqa: N815 - Kestra's field name
    readTimeout: DynDuration | None = None  # noqa: N815
    followRedirects: DynBool = True  # noqa: N815
    allowFailed: DynBool = False  # noqa: N815
    # Bytes of response body read at most: http.Request holds its body in memory
    # (10 MiB by default, as Kestra); http.Download streams to a file (no limit unless set).
    maxContentLength: DynInt | None = None  # noqa: N815


class Request(TaskBase):
    """Send one HTTP request; outputs the status code, headers and body."""

    TYPE = "io.kestra.plugin.core.http.Request"
    ALIASES = ("http.Request", "Request")

    uri: Text
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    headers: dict[str, Text] = Field(default_factory=dict)
    body: Text | None = None
    formData: dict[str, Any] | None = None  # noqa: N815
    contentType: Text | None = None  # noqa: N815
    options: HttpOptions | None = None
    allowFailed: DynBool = False  # noqa: N815
