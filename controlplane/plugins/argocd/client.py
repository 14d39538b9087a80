"""Argo CD's REST API (the grpc-gateway under ``/api/v1``), reached with httpx.

Kestra's Argo CD tasks run the ``argocd`` CLI in a container; Flowplane calls
the same API server directly over HTTPS, so no container, image or CLI
download is involved. The connection properties keep Kestra's names.
"""

from __future__ import annotations

import json
import ssl
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationInfo, field_validator

from controlplane.domain.fields import DynBool, Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError

_TIMEOUT = httpx.Timeout(30.0)
# Properties of Kestra's CLI-based tasks that only configure the container.
_CLI_ONLY = ("taskRunner", "containerImage", "argoCDVersion", "env")


def truthy(value: Any) -> bool:
    """A rendered boolean property (``true``/``false`` text from a template counts)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


class ArgoCDConnection(TaskBase):
    """The properties every Argo CD task shares: server, token, application, TLS."""

    server: Text
    token: Text
    application: Text
    insecure: DynBool = False
    serverCert: Text | None = None  # noqa: N815 - Kestra's field name
    plaintext: DynBool = False
    grpcWeb: DynBool = False  # noqa: N815
    # Kestra runs the CLI in a container; these configure only that container.
    taskRunner: Any = None  # noqa: N815
    containerImage: Any = None  # noqa: N815
    argoCDVersion: Any = None  # noqa: N815
    env: Any = None

    @field_validator(*_CLI_ONLY)
    @classmethod
    def _no_cli(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None:
            raise ValueError(
                f"{info.field_name} is not supported: Flowplane calls Argo CD's REST API "
                "directly and runs no argocd CLI container; remove this property"
            )
        return value

    def client(self, context: RunContext) -> httpx.Client:
        """An httpx client for the server, with the bearer token and TLS settings."""
        base = self._base_url(context)
        token = str(context.render(self.token))
        insecure = truthy(context.render(self.insecure))
        cert = str(context.render(self.serverCert)) if self.serverCert else None
        if insecure and cert:
            raise TaskFailedError("give insecure or serverCert, not both")
        verify: ssl.SSLContext | bool = True
        if insecure:
            verify = False
        elif cert:
            try:
                verify = ssl.create_default_context(cadata=cert)
            except (ssl.SSLError, ValueError) as exc:
                raise TaskFailedError(f"serverCert is not a PEM certificate: {exc}") from None
        if truthy(context.render(self.grpcWeb)):
            # The option exists for proxies without HTTP/2; the REST API is HTTP/1.1.
            context.log("INFO", "grpcWeb: the REST API already works over HTTP/1.1")
        return httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            verify=verify,
            timeout=_TIMEOUT,
        )

    def _base_url(self, context: RunContext) -> str:
        """``server`` as a URL: its own scheme, else https (http with ``plaintext``)."""
        server = str(context.render(self.server)).strip().rstrip("/")
        plaintext = truthy(context.render(self.plaintext))
        if server.startswith("https://"):
            if plaintext:
                raise TaskFailedError("plaintext is true but server is an https:// URL")
            return server
        if server.startswith("http://"):
            return server
        return f"{'http' if plaintext else 'https'}://{server}"


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """One API call; its JSON answer, or TaskFailedError with Argo CD's message."""
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        # The exception text names the host only, never the Authorization header.
        raise TaskFailedError(f"Argo CD {method} {path} failed: {exc}") from None
    if response.status_code >= 400:  # noqa: PLR2004 - HTTP client and server errors
        raise TaskFailedError(
            f"Argo CD answered {response.status_code} to {method} {path}: {_message(response)}"
        )
    try:
        body = response.json()
    except json.JSONDecodeError:
        raise TaskFailedError(f"Argo CD {method} {path} answered no JSON") from None
    if not isinstance(body, dict):
        raise TaskFailedError(
            f"Argo CD {method} {path} answered {type(body).__name__}, not an object"
        )
    return body


def _message(response: httpx.Response) -> str:
    """The grpc-gateway error message (``{"error", "code", "message"}``), else the text."""
    try:
        body = response.json()
    except json.JSONDecodeError:
        return response.text[:500]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:500]
    return str(body)[:500]


def app_path(name: str) -> str:
    """The path of one application, its name URL-quoted."""
    return f"/api/v1/applications/{quote(name, safe='')}"


def status_outputs(app: dict[str, Any]) -> dict[str, Any]:
    """Kestra's outputs read from an Application: sync and health status, revision, lists."""
    status = app.get("status") or {}
    sync = status.get("sync") or {}
    health = status.get("health") or {}
    return {
        "syncStatus": sync.get("status"),
        "healthStatus": health.get("status"),
        "revision": sync.get("revision"),
        "conditions": status.get("conditions"),
        "resources": status.get("resources"),
        "rawOutput": json.dumps(app, sort_keys=True),
    }
