"""Kestra's ``kubectl`` tasks: Apply, Get and Delete Kubernetes resources through the API.

Names, properties and outputs follow Kestra's plugin-kubernetes
(``io.kestra.plugin.kubernetes.kubectl.*``). The client is the official
``kubernetes`` package (the ``kubernetes`` extra); discovery, server-side apply
and the REST calls are in ``client.py``.

Outputs: Apply's ``metadata`` (one per applied object); Get's
``metadataItems``/``statusItems`` (``FETCH``), ``metadataItem``/``statusItem``
(``FETCH_ONE``) or ``uri`` (``STORE``: an Ion text file, one object per line),
and ``size``; Delete has none.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import Field, model_validator

from controlplane.domain.durations import parse_duration
from controlplane.domain.fields import DynBool, DynDuration, StrictModel, Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError, refuse, require_extra
from controlplane.plugins.kubernetes.client import Cluster, KubectlError, Resource
from controlplane.runners import kubernetes as runner

_PREFIX = "io.kestra.plugin.kubernetes.kubectl."
_POLL_SECONDS = 0.5
# Properties of Kestra's AbstractPod / AbstractConnection that only PodCreate uses.
_POD_ONLY = dict.fromkeys(
    (
        "waitUntilRunning",
        "waitRunning",
        "fileSidecar",
        "containerDefaultSpec",
        "inputFiles",
        "outputFiles",
    ),
    "it configures the pods of PodCreate, not kubectl",
)
# Metadata fields Kestra's `Metadata` output carries, in its names.
_METADATA = (
    "uid",
    "name",
    "namespace",
    "clusterName",
    "annotations",
    "labels",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "managedFields",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
)


class Connection(StrictModel):
    """How to reach the API server (Kestra's ``connection``); absent: kubeconfig or in-cluster."""

    masterUrl: Text | None = None  # noqa: N815 - Kestra's field names
    oauthToken: Text | None = None  # noqa: N815
    username: Text | None = None
    password: Text | None = None
    namespace: Text | None = None
    caCertData: Text | None = None  # noqa: N815
    caCertFile: Text | None = None  # noqa: N815
    clientCertData: Text | None = None  # noqa: N815
    clientCertFile: Text | None = None  # noqa: N815
    clientKeyData: Text | None = None  # noqa: N815
    clientKeyFile: Text | None = None  # noqa: N815
    trustCerts: DynBool = False  # noqa: N815
    disableHostnameVerification: DynBool = False  # noqa: N815

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, values: Any) -> Any:
        keystores = "Java key and trust stores; give PEM data or files (caCert*, clientCert*)"
        return refuse(
            values,
            {
                "apiVersion": "every call names its own API version",
                "clientKeyAlgo": "the key's algorithm is read from the PEM key",
                "clientKeyPassphrase": "encrypted client keys are not supported",
                "trustStoreFile": keystores,
                "trustStorePassphrase": keystores,
                "keyStoreFile": keystores,
                "keyStorePassphrase": keystores,
                "oauthTokenProvider": "give the token itself as oauthToken",
            },
        )


class _Kubectl(TaskBase):
    connection: Connection | None = None
    namespace: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _pod_only(cls, values: Any) -> Any:
        return refuse(values, _POD_ONLY)

    def target_namespace(self, context: RunContext) -> str:
        """The task's namespace, else the connection's, else ``default`` (Kestra's default)."""
        for value in (self.namespace, self.connection.namespace if self.connection else None):
            if value is not None:
                return str(context.render(value))
        return "default"

    @contextmanager
    def cluster(self, context: RunContext) -> Iterator[Cluster]:
        """An open connection to the API server the task names."""
        require_extra("kubernetes", "kubernetes", self.TYPE)
        connection, basic = _connection(self.connection, context)
        try:
            with runner.api_client(connection) as client:
                yield Cluster(client, basic_auth=basic)
        except runner.KubernetesError as exc:
            raise TaskFailedError(str(exc)) from None
        except KubectlError as exc:
            raise TaskFailedError(str(exc)) from None


class _Typed(_Kubectl):
    """Get and Delete name a resource type, optionally in an API group and version."""

    resourceType: Text  # noqa: N815 - Kestra's field names
    apiGroup: Text | None = None  # noqa: N815
    apiVersion: Text | None = None  # noqa: N815

    def resource(self, cluster: Cluster, context: RunContext) -> Resource:
        """The resource ``resourceType`` names (Kestra's defaults: core group, ``v1``)."""
        group = str(context.render(self.apiGroup)) if self.apiGroup else ""
        version = str(context.render(self.apiVersion)) if self.apiVersion else "v1"
        return cluster.for_type(group, version, str(context.render(self.resourceType)))


class Apply(_Kubectl):
    """Apply Kubernetes resources with server-side apply (create or update)."""

    TYPE = _PREFIX + "Apply"
    ALIASES = ("kubectl.Apply",)
    OUTPUTS: ClassVar[Mapping[str, str]] = {"metadata": "the metadata of each applied resource"}

    spec: Text
    waitUntilReady: DynDuration = "PT0S"  # noqa: N815 - Kestra's field name

    def run(self, context: RunContext) -> dict[str, Any]:
        """Apply each document of ``spec``; optionally wait for each to be Ready."""
        manifests = _manifests(str(context.render(self.spec)))
        namespace = self.target_namespace(context)
        wait = parse_duration(str(context.render(self.waitUntilReady))).total_seconds()
        metadata = []
        with self.cluster(context) as cluster:
            for manifest in manifests:
                resource = cluster.for_kind(manifest["apiVersion"], manifest["kind"])
                if resource.namespaced:
                    manifest["metadata"]["namespace"] = _namespace_of(manifest, namespace)
                applied = cluster.apply(resource, manifest)
                described = f"{resource.kind.lower()}/{applied['metadata']['name']}"
                context.log("INFO", f"applied {described}")
                if wait > 0:
                    applied = _wait_ready(cluster, resource, applied, wait, context)
                    context.log("INFO", f"{described} is ready")
                metadata.append(_metadata(applied))
        return {"metadata": metadata}


class Get(_Typed):
    """Get one or many Kubernetes resources of a type."""

    TYPE = _PREFIX + "Get"
    ALIASES = ("kubectl.Get",)
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "metadataItems": "FETCH: the metadata of each resource",
        "statusItems": "FETCH: the status of each resource ({status: ...})",
        "metadataItem": "FETCH_ONE: the metadata of the first resource",
        "statusItem": "FETCH_ONE: the status of the first resource",
        "uri": "STORE: a stored Ion file, one {metadata, status} per line",
        "size": "how many resources were fetched or stored",
    }

    resourcesNames: list[Text] | None = None  # noqa: N815 - Kestra's field names
    fetchType: Literal["NONE", "FETCH", "FETCH_ONE", "STORE"] = "NONE"  # noqa: N815
    waitUntilReady: DynDuration = "PT0S"  # noqa: N815

    def run(self, context: RunContext) -> dict[str, Any]:
        """Read the named resources (or all of the type in the namespace)."""
        namespace = self.target_namespace(context)
        wait = parse_duration(str(context.render(self.waitUntilReady))).total_seconds()
        names = [str(context.render(n)) for n in self.resourcesNames or []]
        with self.cluster(context) as cluster:
            resource = self.resource(cluster, context)
            if names:
                found = []
                for name in names:
                    item = cluster.get(resource, namespace, name)
                    if item is None:
                        context.log("WARN", f"{resource.plural}/{name} not found in {namespace}")
                        continue
                    if wait > 0:
                        item = _wait_ready(cluster, resource, item, wait, context)
                    found.append(item)
            else:
                found = cluster.list(resource, namespace)
        context.log("INFO", f"fetched {len(found)} {resource.plural} in {namespace}")
        return _fetched(self, context, found)


class Delete(_Typed):
    """Delete Kubernetes resources of a type by name."""

    TYPE = _PREFIX + "Delete"
    ALIASES = ("kubectl.Delete",)
    OUTPUTS: ClassVar[Mapping[str, str]] = {}

    resourcesNames: Annotated[list[Text], Field(min_length=1)]  # noqa: N815 - Kestra's name

    def run(self, context: RunContext) -> dict[str, Any]:
        """Delete each named resource; one that does not exist is logged, not an error."""
        namespace = self.target_namespace(context)
        with self.cluster(context) as cluster:
            resource = self.resource(cluster, context)
            for raw in self.resourcesNames:
                name = str(context.render(raw))
                if cluster.delete(resource, namespace, name):
                    context.log("INFO", f"deleted {resource.plural}/{name} in {namespace}")
                else:
                    context.log("WARN", f"{resource.plural}/{name} not found in {namespace}")
        return {}


def _connection(
    connection: Connection | None, context: RunContext
) -> tuple[runner.ClusterConnection | None, tuple[str, str] | None]:
    """The runner's connection, with PEM data written to files the client can load."""
    if connection is None:
        return None, None

    def text(value: str | None) -> str | None:
        return str(context.render(value)) if value is not None else None

    def pem_file(data: str | None, name: str) -> str | None:
        if data is None:
            return None
        return runner.private_pem_file(context.working_dir, name, str(context.render(data)))

    username = text(connection.username)
    return (
        runner.ClusterConnection(
            master_url=text(connection.masterUrl),
            oauth_token=text(connection.oauthToken),
            ca_cert_data=text(connection.caCertData),
            ca_cert_file=text(connection.caCertFile),
            client_cert_file=pem_file(connection.clientCertData, ".client.crt")
            or text(connection.clientCertFile),
            client_key_file=pem_file(connection.clientKeyData, ".client.key")
            or text(connection.clientKeyFile),
            trust_certs=_flag(context.render(connection.trustCerts)),
            disable_hostname_verification=_flag(
                context.render(connection.disableHostnameVerification)
            ),
        ),
        (username, text(connection.password) or "") if username is not None else None,
    )


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"", "false", "0", "no"}
    return bool(value)


def _manifests(spec: str) -> list[dict[str, Any]]:
    """The objects of a YAML (or JSON) spec, one per document; a ``List`` is unpacked."""
    try:
        documents = [d for d in yaml.safe_load_all(spec) if d is not None]
    except yaml.YAMLError as exc:
        raise TaskFailedError(f"spec is not valid YAML: {exc}") from None
    objects: list[dict[str, Any]] = []
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == "List":
            objects.extend(document.get("items") or [])
        else:
            objects.append(document)
    if not objects:
        raise TaskFailedError("spec holds no Kubernetes object")
    for number, item in enumerate(objects, start=1):
        metadata = item.get("metadata") if isinstance(item, dict) else None
        if not (
            isinstance(item, dict)
            and item.get("apiVersion")
            and item.get("kind")
            and isinstance(metadata, dict)
            and metadata.get("name")
        ):
            raise TaskFailedError(f"spec object {number} needs apiVersion, kind and metadata.name")
    return objects


def _namespace_of(manifest: dict[str, Any], namespace: str) -> str:
    """The object's own namespace, which must agree with the task's when both are set."""
    own = manifest["metadata"].get("namespace")
    if own and own != namespace:
        name = manifest["metadata"]["name"]
        raise TaskFailedError(
            f"{manifest['kind']} {name} names namespace {own!r} but the task applies to "
            f"{namespace!r}; set the task's namespace or drop metadata.namespace"
        )
    return namespace


def _wait_ready(
    cluster: Cluster, resource: Resource, item: dict[str, Any], seconds: float, context: RunContext
) -> dict[str, Any]:
    """Poll the object until its ``Ready`` condition is ``True`` (Kestra's waitUntilReady)."""
    metadata = item.get("metadata") or {}
    name, namespace = metadata.get("name", ""), metadata.get("namespace", "")
    deadline = time.monotonic() + seconds
    while True:
        if _is_ready(item):
            return item
        if context.should_stop():
            raise TaskFailedError(f"stopped while waiting for {resource.plural}/{name}")
        if time.monotonic() >= deadline:
            raise TaskFailedError(
                f"{resource.plural}/{name} was not Ready after {seconds:g} s (waitUntilReady)"
            )
        time.sleep(_POLL_SECONDS)
        current = cluster.get(resource, namespace, name)
        if current is None:
            raise TaskFailedError(f"{resource.plural}/{name} disappeared while waiting")
        item = current


def _is_ready(item: dict[str, Any]) -> bool:
    conditions = (item.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _metadata(item: dict[str, Any]) -> dict[str, Any]:
    """Kestra's ``Metadata`` of an object: the fields it names, when present."""
    metadata = item.get("metadata") or {}
    return {key: metadata[key] for key in _METADATA if metadata.get(key) is not None}


def _status(item: dict[str, Any]) -> dict[str, Any]:
    """Kestra's ``ResourceStatus``: the object's status map, or null."""
    status = item.get("status")
    return {"status": status if isinstance(status, dict) else None}


def _fetched(task: Get, context: RunContext, found: list[dict[str, Any]]) -> dict[str, Any]:
    if task.fetchType == "NONE":
        return {}
    if task.fetchType == "FETCH":
        return {
            "metadataItems": [_metadata(i) for i in found],
            "statusItems": [_status(i) for i in found],
            "size": len(found),
        }
    if task.fetchType == "FETCH_ONE":
        first = found[0] if found else None
        return {
            "metadataItem": _metadata(first) if first else None,
            "statusItem": _status(first) if first else None,
            "size": len(found),
        }
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=context.working_dir, delete=False
    ) as handle:
        for item in found:
            # A JSON value is an Ion text value: the file reads as Ion, one per line.
            record = {"metadata": _metadata(item), "status": _status(item)["status"]}
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
    return {"uri": context.put_file(Path(handle.name), f"{task.id}.ion"), "size": len(found)}
