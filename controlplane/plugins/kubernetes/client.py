"""A small Kubernetes API client for the kubectl tasks: discovery, apply, get, list, delete.

It speaks the API directly over the official ``kubernetes`` client's
connection (``controlplane.runners.kubernetes.api_client``: TLS, tokens,
kubeconfig), as ``kubectl`` does:

- *discovery* maps a kind (``Deployment``) or a resource name (``deployments``,
  ``deploy``) to its plural and scope, from ``GET /api/v1`` or
  ``GET /apis/{group}/{version}`` (an ``APIResourceList``);
- *apply* is server-side apply: ``PATCH`` with ``application/apply-patch+yaml``,
  a field manager and ``force=true``, which creates or updates the object;
- *get*, *list* and *delete* are the plain REST calls.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from controlplane.errors import FlowplaneError

FIELD_MANAGER = "flowplane"
_SUCCESS = range(200, 300)
_TIMEOUT = 30.0


class KubectlError(FlowplaneError):
    """The API refused a call; the message carries its status and reason."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Resource:
    """One API resource as discovery describes it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``group/version`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str | None = None) -> str:
        """The REST path of the collection, or of one object when ``name`` is given."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            if not namespace:
                raise KubectlError(f"{self.kind} is namespaced: a namespace is needed")
            root += f"/namespaces/{namespace}"
        path = f"{root}/{self.plural}"
        return f"{path}/{name}" if name else path


class Cluster:
    """Calls to one API server through an open ``kubernetes.client.ApiClient``."""

    def __init__(self, client: Any, *, basic_auth: tuple[str, str] | None = None) -> None:
        self.client = client
        self._basic = basic_auth
        self._discovered: dict[str, list[dict[str, Any]]] = {}

    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> Any:
        """One call; the decoded JSON answer, or KubectlError with the API's message."""
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if self._basic is not None:
            # The generated client knows bearer tokens only; basic auth is a header.
            token = base64.b64encode(":".join(self._basic).encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        payload = json.dumps(body) if body is not None else None
        method, url, headers, payload, post = self.client.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=payload,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(
                method,
                url,
                header_params=headers,
                body=payload,
                post_params=post,
                _request_timeout=_TIMEOUT,
            )
            raw = response.read()
        except Exception as exc:  # noqa: BLE001 - urllib3 and the client raise many kinds
            raise KubectlError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        text = raw.decode("utf-8", "replace") if raw else ""
        if response.status not in _SUCCESS:
            raise KubectlError(
                f"{method} {path}: {_status_message(response.status, text)}", status=response.status
            )
        return json.loads(text) if text else None

    def resources(self, group: str, version: str) -> list[dict[str, Any]]:
        """The API resources of one group version (discovery), cached for the task."""
        key = f"{group}/{version}"
        if key not in self._discovered:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                found = self.request("GET", path)
            except KubectlError as exc:
                if exc.status == HTTPStatus.NOT_FOUND:
                    raise KubectlError(f"the server does not serve {key.lstrip('/')}") from None
                raise
            self._discovered[key] = list((found or {}).get("resources") or [])
        return self._discovered[key]

    def for_kind(self, api_version: str, kind: str) -> Resource:
        """The resource a manifest's ``apiVersion`` and ``kind`` name."""
        group, _, version = api_version.rpartition("/")
        for entry in self.resources(group, version):
            if entry.get("kind") == kind and "/" not in entry.get("name", ""):
                return _resource(group, version, entry)
        raise KubectlError(f"no kind {kind!r} is served in {api_version}")

    def for_type(self, group: str, version: str, resource_type: str) -> Resource:
        """The resource a name names, as kubectl reads it: plural, singular, kind or short name."""
        wanted = resource_type.strip().lower()
        for entry in self.resources(group, version):
            if "/" in entry.get("name", ""):
                continue  # a subresource (pods/log)
            names = {
                entry.get("name", ""),
                entry.get("singularName", ""),
                str(entry.get("kind", "")).lower(),
                *(entry.get("shortNames") or []),
            }
            if wanted in {n.lower() for n in names if n}:
                return _resource(group, version, entry)
        where = f"{group}/{version}" if group else version
        raise KubectlError(f"the server has no resource type {resource_type!r} in {where}")

    def apply(self, resource: Resource, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply ``manifest``; the object as the server stored it."""
        metadata = manifest["metadata"]
        namespace = metadata.get("namespace") if resource.namespaced else None
        applied = self.request(
            "PATCH",
            resource.path(namespace, metadata["name"]),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            body=manifest,
            content_type="application/apply-patch+yaml",
        )
        return dict(applied or {})

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        try:
            found = self.request("GET", resource.path(namespace, name))
        except KubectlError as exc:
            if exc.status == HTTPStatus.NOT_FOUND:
                return None
            raise
        return dict(found or {})

    def list(self, resource: Resource, namespace: str) -> list[dict[str, Any]]:
        """Every object of the resource in ``namespace``."""
        found = self.request("GET", resource.path(namespace)) or {}
        return [dict(item) for item in found.get("items") or []]

    def delete(self, resource: Resource, namespace: str, name: str) -> bool:
        """Delete one object; False when it did not exist."""
        try:
            self.request("DELETE", resource.path(namespace, name))
        except KubectlError as exc:
            if exc.status == HTTPStatus.NOT_FOUND:
                return False
            raise
        return True


def _resource(group: str, version: str, entry: dict[str, Any]) -> Resource:
    return Resource(
        group=group,
        version=version,
        plural=str(entry["name"]),
        kind=str(entry.get("kind", "")),
        namespaced=bool(entry.get("namespaced", False)),
    )


def _status_message(status: int, text: str) -> str:
    """The API's ``Status`` message when it sent one (it never holds credentials)."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        reason = f" ({body['reason']})" if body.get("reason") else ""
        return f"{status}{reason}: {body['message']}"
    return f"HTTP {status}"
