"""The provider's HTTP client for Flowplane API v1.

Every failure leaves this module as an ``ApiError`` whose ``summary`` and
``detail`` are ready to show to a Terraform user: httpx's exceptions and the
server's error bodies are translated here, and only here.

Importing httpx costs about 80 ms, and Terraform starts the provider several
times per command, mostly for calls that never reach the server; so only
``FlowplaneProvider.configure_provider`` imports this module.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any
from urllib.parse import quote

import httpx

from controlplane.terraform_provider import tflog
from controlplane.terraform_provider.errors import ApiError, Problem

ORIGIN_HEADER = {"X-Flowplane-Origin": "terraform"}
_NOT_FOUND = 404
_UNAUTHORIZED = 401
_FORBIDDEN = 403
_CONFLICT = 409
_PRECONDITION_FAILED = 412
_INVALID = 422
# Answers from a proxy or a restarting server: the request may be sent again.
_RETRY_STATUSES = frozenset({502, 503, 504})
# Methods whose repetition cannot do more than the first call did (RFC 9110 9.2.2).
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
ATTEMPTS = 4
_BACKOFF_BASE = 0.2
_BACKOFF_CAP = 2.0


class FlowplaneClient:
    """Synchronous calls to one Flowplane server; one instance per configured provider."""

    def __init__(
        self,
        endpoint: str,
        token: str | None,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``transport`` replaces the network, for tests."""
        self.endpoint = endpoint.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "terraform-provider-flowplane"}
        if token:
            # The server ignores it until access control lands; sending it now
            # means configurations written today keep working then.
            headers["Authorization"] = f"Bearer {token}"
        self._timeout = timeout
        self._stopping = threading.Event()
        self.identity: dict[str, Any] | None = None
        self._http = httpx.Client(
            base_url=self.endpoint, headers=headers, timeout=timeout, transport=transport
        )
        # Terraform validates a resource, then plans it, in the same provider
        # process: one /validate call per distinct content is enough.
        self._validations: dict[str, dict[str, Any]] = {}

    # -- the server ----------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        """Check that the endpoint is a Flowplane server that accepts the token.

        Until this succeeded, no 404 is taken to mean "deleted": a mistyped
        endpoint answers 404 to everything, and Terraform would drop every
        resource from state.
        """
        path = "/api/v1/whoami"
        response = self._send("GET", path)
        if response.status_code in {_UNAUTHORIZED, _FORBIDDEN}:
            raise _error_from(response)
        body: Any = None
        if response.is_success:
            try:
                body = response.json()
            except ValueError:
                body = None
        if not isinstance(body, dict) or body.get("product") != "flowplane":
            raise ApiError(
                f"{self.endpoint} is not a Flowplane server",
                f"GET {response.request.url} answered HTTP {response.status_code}"
                f"{'' if response.is_success else ' ' + response.reason_phrase}, not "
                "Flowplane's identity. Set the provider's endpoint (or FLOWPLANE_ENDPOINT) to "
                "the server's base URL, such as http://127.0.0.1:8080, with no path after it. "
                "Nothing was read or changed.",
                response.status_code,
            )
        self.identity = body
        return body

    @property
    def server_id(self) -> str | None:
        """The checked server's id, or None before ``whoami`` succeeded."""
        if self.identity is None:
            return None
        return str(self.identity.get("server_id"))

    def stop(self) -> None:
        """Terraform asked to stop: requests already sent finish, no new one starts."""
        self._stopping.set()

    # -- flows ---------------------------------------------------------------

    def get_flow(self, namespace: str, flow_id: str) -> dict[str, Any] | None:
        """The live flow, or None when it is missing or deleted."""
        return self._get(f"/api/v1/flows/{_seg(namespace)}/{_seg(flow_id)}")

    def put_flow(
        self, namespace: str, flow_id: str, content: str, if_match: str | None = None
    ) -> dict[str, Any]:
        """Create or update a flow from ``content``, sent byte for byte.

        With ``if_match``, the server refuses (412) when the flow changed since
        that ETag was read, so a concurrent write is never overwritten.
        """
        path = f"/api/v1/flows/{_seg(namespace)}/{_seg(flow_id)}"
        return self._json("PUT", path, {"content": content}, _write_headers(if_match))

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        """Delete a flow; one already gone is not an error."""
        self._delete(f"/api/v1/flows/{_seg(namespace)}/{_seg(flow_id)}")

    def validate_flow(self, content: str) -> dict[str, Any]:
        """``{valid, namespace, id, spec_sha256, problems}`` without storing anything."""
        if content not in self._validations:
            # Validation stores nothing, so a retried POST is safe.
            body = self._json("POST", "/api/v1/flows/validate", {"content": content}, safe=True)
            self._validations[content] = body
        return self._validations[content]

    # -- namespaces ----------------------------------------------------------

    def get_namespace(self, name: str) -> dict[str, Any] | None:
        """The namespace, or None when it does not exist."""
        return self._get(f"/api/v1/namespaces/{_seg(name)}")

    def put_namespace(
        self, name: str, body: dict[str, Any], if_match: str | None = None
    ) -> dict[str, Any]:
        """Create or replace a namespace's description, labels and variables."""
        path = f"/api/v1/namespaces/{_seg(name)}"
        return self._json("PUT", path, body, _write_headers(if_match))

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace; one already gone is not an error."""
        self._delete(f"/api/v1/namespaces/{_seg(name)}")

    # -- secrets -------------------------------------------------------------

    def get_secret(self, namespace: str, key: str) -> dict[str, Any] | None:
        """A secret's metadata (never its value), or None when it does not exist."""
        return self._get(f"/api/v1/namespaces/{_seg(namespace)}/secrets/{_seg(key)}")

    def put_secret(
        self, namespace: str, key: str, value: str, description: str | None
    ) -> dict[str, Any]:
        """Create or replace a secret; the same value again keeps its version."""
        path = f"/api/v1/namespaces/{_seg(namespace)}/secrets/{_seg(key)}"
        body = {"value": value, "description": description}
        return self._json("PUT", path, body, ORIGIN_HEADER)

    def delete_secret(self, namespace: str, key: str) -> None:
        """Delete a secret; one already gone is not an error."""
        self._delete(f"/api/v1/namespaces/{_seg(namespace)}/secrets/{_seg(key)}")

    # -- namespace KV and files ----------------------------------------------

    def get_kv(self, namespace: str, key: str) -> dict[str, Any] | None:
        """A KV entry (a sealed value comes masked), or None when it does not exist."""
        return self._get(f"/api/v1/namespaces/{_seg(namespace)}/kv/{_seg(key)}")

    def put_kv(
        self, namespace: str, key: str, value: Any, description: str | None
    ) -> dict[str, Any]:
        """Create or replace a KV entry."""
        path = f"/api/v1/namespaces/{_seg(namespace)}/kv/{_seg(key)}"
        body = {"value": value, "description": description}
        return self._json("PUT", path, body, ORIGIN_HEADER)

    def delete_kv(self, namespace: str, key: str) -> None:
        """Delete a KV entry; one already gone is not an error."""
        self._delete(f"/api/v1/namespaces/{_seg(namespace)}/kv/{_seg(key)}")

    def get_file(self, namespace: str, path: str) -> dict[str, Any] | None:
        """A namespace file with its content (base64), or None when it does not exist."""
        return self._get(f"/api/v1/namespaces/{_seg(namespace)}/files/{_file_path(path)}")

    def put_file(self, namespace: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create or replace a namespace file from ``content`` or ``content_base64``."""
        url = f"/api/v1/namespaces/{_seg(namespace)}/files/{_file_path(path)}"
        return self._json("PUT", url, body, ORIGIN_HEADER)

    def delete_file(self, namespace: str, path: str) -> None:
        """Delete a namespace file; one already gone is not an error."""
        self._delete(f"/api/v1/namespaces/{_seg(namespace)}/files/{_file_path(path)}")

    # -- Git sources ---------------------------------------------------------

    def get_source(self, source_id: str) -> dict[str, Any] | None:
        """A Git source (never its webhook secret), or None when it does not exist."""
        return self._get(f"/api/v1/sources/{_seg(source_id)}")

    def put_source(
        self, source_id: str, body: dict[str, Any], if_match: str | None = None
    ) -> dict[str, Any]:
        """Create or replace a Git source; the same body again keeps its version."""
        path = f"/api/v1/sources/{_seg(source_id)}"
        return self._json("PUT", path, body, _write_headers(if_match))

    def delete_source(self, source_id: str) -> None:
        """Delete a Git source (its flows stay live, released); one already gone is fine."""
        self._delete(f"/api/v1/sources/{_seg(source_id)}")

    # -- executions ----------------------------------------------------------

    def get_execution(self, execution_id: str) -> dict[str, Any] | None:
        """An execution with its lineage fields, or None when it does not exist."""
        return self._get(f"/api/v1/executions/{_seg(execution_id)}")

    # -- API tokens ----------------------------------------------------------

    def create_token(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a token; the answer holds the bearer secret, which is never shown again."""
        return self._json("POST", "/api/v1/tokens", body, ORIGIN_HEADER)

    def get_token(self, token_id: str) -> dict[str, Any] | None:
        """A token's metadata, or None when it does not exist or was revoked."""
        return self._get(f"/api/v1/tokens/{_seg(token_id)}")

    def delete_token(self, token_id: str) -> None:
        """Revoke a token; one already gone is not an error."""
        self._delete(f"/api/v1/tokens/{_seg(token_id)}")

    # -- plumbing ------------------------------------------------------------

    def _get(self, path: str) -> dict[str, Any] | None:
        response = self._send("GET", path)
        if response.status_code == _NOT_FOUND:
            if self.identity is None:
                # Never "deleted" on the word of a server we have not identified.
                raise ApiError(
                    f"GET {path} answered 404 from a server not identified as Flowplane",
                    "The provider did not check the endpoint (GET /api/v1/whoami), so a 404 "
                    "is not taken to mean the object was deleted.",
                    _NOT_FOUND,
                )
            return None
        return self._body(response)

    def _delete(self, path: str) -> None:
        response = self._send("DELETE", path, headers=ORIGIN_HEADER)
        if response.status_code != _NOT_FOUND:
            self._body(response)

    def _json(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
        *,
        safe: bool = False,
    ) -> dict[str, Any]:
        return self._body(self._send(method, path, json=body, headers=headers, safe=safe))

    def _send(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        safe: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send, retrying where repeating the request cannot do harm.

        Retried: connection errors and 502/503/504, with jittered exponential
        backoff, for idempotent methods, for a write that carries If-Match (a
        repeat after a success is refused with 412, never applied twice) and
        for requests marked ``safe``. Once Terraform asked to stop, nothing new
        is sent and no retry waits.
        """
        retryable = safe or method in _IDEMPOTENT or "If-Match" in (headers or {})
        attempt = 1
        while True:
            if self._stopping.is_set():
                raise ApiError(
                    f"{method} {path} was not sent: Terraform asked the provider to stop",
                    "Run the command again to finish.",
                )
            started = time.monotonic()
            try:
                response = self._once(method, path, headers=headers, **kwargs)
            except ApiError as exc:
                tflog.debug(
                    "flowplane request failed",
                    method=method,
                    path=path,
                    attempt=attempt,
                    error=exc.summary,
                )
                if not retryable or attempt >= ATTEMPTS or exc.status is not None:
                    raise
            else:
                tflog.debug(
                    "flowplane request",
                    method=method,
                    path=path,
                    status=response.status_code,
                    attempt=attempt,
                    seconds=round(time.monotonic() - started, 3),
                )
                if (
                    response.status_code not in _RETRY_STATUSES
                    or not retryable
                    or attempt >= ATTEMPTS
                ):
                    return response
            if self._stopping.wait(_backoff(attempt)):
                continue  # the loop head reports the stop
            attempt += 1

    def _once(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ApiError(
                f"cannot reach Flowplane at {self.endpoint}: {_reason(exc)}",
                "Check the provider's endpoint (or FLOWPLANE_ENDPOINT) and that the server runs.",
            ) from None
        except httpx.TimeoutException:
            raise ApiError(
                f"Flowplane at {self.endpoint} did not answer within {self._timeout:g} s",
                f"{method} {path} timed out; raise the provider's timeout if the server is slow.",
                # A status marks it as not retried: the server may have done the work.
                status=0,
            ) from None
        except httpx.HTTPError as exc:
            raise ApiError(f"{method} {self.endpoint}{path} failed: {exc}") from None

    def _body(self, response: httpx.Response) -> dict[str, Any]:
        if response.is_success:
            if not response.content:
                return {}
            body: dict[str, Any] = response.json()
            etag = response.headers.get("ETag")
            if etag is not None and isinstance(body, dict):
                # The API sends the ETag as a header only; resources keep it in
                # state (attribute `etag`) and send it back as If-Match.
                body.setdefault("etag", etag)
            return body
        raise _error_from(response)


def _backoff(attempt: int) -> float:
    """Full jitter: a random wait up to an exponentially growing, capped bound."""
    bound = min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempt - 1))
    return random.uniform(bound / 2, bound)  # noqa: S311 - jitter, not cryptography


def _seg(value: str) -> str:
    """One URL path segment; names are validated by the server, this only escapes."""
    return quote(value, safe="")


def _file_path(path: str) -> str:
    """A relative file path: each segment escaped, the slashes kept."""
    return "/".join(_seg(segment) for segment in path.split("/"))


def _write_headers(if_match: str | None) -> dict[str, str]:
    """Headers of a write: the origin, and If-Match when an ETag is known."""
    if if_match is None:
        return ORIGIN_HEADER
    return {**ORIGIN_HEADER, "If-Match": if_match}


def _reason(exc: httpx.ConnectError) -> str:
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused"
    return text or type(exc).__name__


def _error_from(response: httpx.Response) -> ApiError:
    """Translate an error response (the API's shared error body, or anything else)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    message = str(body.get("message") or response.reason_phrase or "no message")
    problems = [Problem.from_json(p) for p in body.get("problems") or [] if isinstance(p, dict)]
    request = response.request
    where = f"{request.method} {request.url.path}"
    if status == _UNAUTHORIZED:
        return ApiError(
            f"Flowplane refused the API token (HTTP {status})",
            f"{where}: {message}. Check the provider's api_token (or FLOWPLANE_TOKEN): "
            "it is unknown, revoked or expired.",
            status,
        )
    if status == _FORBIDDEN:
        return ApiError(
            f"Flowplane refused the API token (HTTP {status}: not allowed)",
            f"{where}: {message}. The provider's api_token (or FLOWPLANE_TOKEN) is valid, "
            "but its role or namespaces do not allow this.",
            status,
        )
    if status == _CONFLICT:
        return ApiError("Flowplane refused the change (HTTP 409 conflict)", message, status)
    if status == _PRECONDITION_FAILED:
        return ApiError(
            "the object changed on the server since Terraform last read it (HTTP 412); "
            "nothing was overwritten",
            f"{where}: {message}. Someone else wrote it after this plan was made. "
            "Refresh and review the server's version: run `terraform plan` (or "
            "`terraform apply -refresh-only`) again, then apply.",
            status,
        )
    if status == _INVALID and problems:
        detail = "\n".join(p.render() for p in problems)
        what = "flow" if "/flows/" in request.url.path else "request"
        return ApiError(f"Flowplane rejected the {what} as invalid", detail, status, problems)
    return ApiError(f"{where} failed with HTTP {status}", message, status, problems)
