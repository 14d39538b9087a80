"""kubectl Apply, Get and Delete, through the engine, against a local Kubernetes API server.

There is no cluster here. ``FakeKubernetes`` is a real HTTP server that keeps
objects in memory and answers the calls the tasks make the way the Kubernetes
API does (shapes written from the API reference, https://kubernetes.io/docs/
reference/using-api/api-concepts/ and .../server-side-apply/): discovery
(``APIResourceList``), server-side apply (``PATCH`` with
``application/apply-patch+yaml``, ``fieldManager``, ``force``; 201 on create,
200 on update), get, list (``<Kind>List``), delete, and ``Status`` errors
(401, 403, 404). It records every request so the tests check what was sent.

It is stateful, unlike the recorded pod contracts of tests/runners/ (which
cannot answer ``PATCH`` or echo what was applied), so a flow can apply, read
back and delete. The lead's end-to-end tests may import it.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.runners.conftest import Recorded
from tests.services.test_engine import logs, put_flow, run, task_runs

RUNS: dict[str, str] = {
    "io.kestra.plugin.kubernetes.kubectl.Apply": "test_apply_get_and_delete_round_trip",
    "io.kestra.plugin.kubernetes.kubectl.Get": "test_apply_get_and_delete_round_trip",
    "io.kestra.plugin.kubernetes.kubectl.Delete": "test_apply_get_and_delete_round_trip",
}

TOKEN = "k8s-token-0f7e"  # noqa: S105 - the fake server's accepted token, kept as a secret

# Discovery: (group, version) -> the resources it serves, as an APIResourceList lists them.
DISCOVERY: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("", "v1"): [
        {
            "name": "configmaps",
            "singularName": "configmap",
            "namespaced": True,
            "kind": "ConfigMap",
            "shortNames": ["cm"],
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
        },
        {
            "name": "pods",
            "singularName": "pod",
            "namespaced": True,
            "kind": "Pod",
            "shortNames": ["po"],
            "verbs": ["create", "delete", "get", "list", "patch"],
        },
        {
            "name": "pods/log",
            "singularName": "",
            "namespaced": True,
            "kind": "Pod",
            "verbs": ["get"],
        },
        {
            "name": "namespaces",
            "singularName": "namespace",
            "namespaced": False,
            "kind": "Namespace",
            "shortNames": ["ns"],
            "verbs": ["create", "delete", "get", "list", "patch"],
        },
    ],
    ("apps", "v1"): [
        {
            "name": "deployments",
            "singularName": "deployment",
            "namespaced": True,
            "kind": "Deployment",
            "shortNames": ["deploy"],
            "verbs": ["create", "delete", "get", "list", "patch"],
        },
    ],
}


@dataclass(frozen=True)
class Target:
    """What a REST path names: a collection (and maybe one object) of a group version."""

    group_version: str
    namespace: str
    plural: str
    name: str | None
    collection: str

    @classmethod
    def parse(cls, parts: list[str]) -> Target:
        base = 2 if parts[0] == "api" else 3
        rest = parts[base:]
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        name = rest[1] if len(rest) > 1 else None
        collection = "/" + "/".join(parts[: len(parts) - (1 if name else 0)])
        return cls("/".join(parts[1:base]), namespace, rest[0], name, collection)


@dataclass
class FakeKubernetes:
    """In-memory objects keyed by (api path of the collection, name)."""

    url: str = ""
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    # Service accounts without a verb: (method, collection path) answered 403.
    forbidden: set[tuple[str, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def handle(self, request: Recorded) -> tuple[int, Any]:
        """The status and body the API answers ``request`` with."""
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, status(401, "Unauthorized", "Unauthorized")
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and len(parts) == (2 if parts[0] == "api" else 3):
            return self._discover(parts)
        target = Target.parse(parts)
        if (request.method, target.collection) in self.forbidden:
            return 403, status(
                403,
                "Forbidden",
                f'{target.plural} is forbidden: User "system:serviceaccount:ci:flowplane" '
                f'cannot {request.method.lower()} resource "{target.plural}" in API group '
                f'"" in the namespace "{target.namespace}"',
            )
        verbs = {
            ("PATCH", True): self._apply,
            ("GET", True): self._get,
            ("GET", False): self._list,
            ("DELETE", True): self._delete,
        }
        verb = verbs.get((request.method, target.name is not None))
        if verb is None:
            return 405, status(405, "MethodNotAllowed", "the server does not allow this method")
        with self.lock:
            return verb(target, request)

    @staticmethod
    def _discover(parts: list[str]) -> tuple[int, Any]:
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        resources = DISCOVERY.get((group, version))
        if resources is None:
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        return 200, {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def _get(self, target: Target, _: Recorded) -> tuple[int, Any]:
        found = self.objects.get((target.collection, str(target.name)))
        if found is None:
            return 404, status(404, "NotFound", f'{target.plural} "{target.name}" not found')
        return 200, self._with_status(found)

    def _list(self, target: Target, _: Recorded) -> tuple[int, Any]:
        group, _slash, version = target.group_version.rpartition("/")
        kind = next(r["kind"] for r in DISCOVERY[group, version] if r["name"] == target.plural)
        items = [
            {k: v for k, v in self._with_status(o).items() if k not in {"apiVersion", "kind"}}
            for (collection, _name), o in sorted(self.objects.items())
            if collection == target.collection
        ]
        return 200, {
            "kind": f"{kind}List",
            "apiVersion": target.group_version,
            "metadata": {"resourceVersion": "900"},
            "items": items,
        }

    def _delete(self, target: Target, _: Recorded) -> tuple[int, Any]:
        if self.objects.pop((target.collection, str(target.name)), None) is None:
            return 404, status(404, "NotFound", f'{target.plural} "{target.name}" not found')
        return 200, {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Success",
            "details": {"name": target.name, "kind": target.plural},
        }

    def _apply(self, target: Target, request: Recorded) -> tuple[int, Any]:
        if request.headers.get("content-type") != "application/apply-patch+yaml":
            return 415, status(415, "UnsupportedMediaType", "apply needs apply-patch+yaml")
        if "fieldManager" not in request.query:
            return 422, status(422, "Invalid", "fieldManager is required for apply patch")
        body = request.body
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        existing = self.objects.get((target.collection, str(target.name)))
        metadata = dict(body["metadata"])
        if target.namespace:
            metadata["namespace"] = target.namespace
        if existing is None:
            metadata.update(
                uid=str(uuid.uuid4()), creationTimestamp=now, generation=1, resourceVersion="1"
            )
            code = 201
        else:
            old = existing["metadata"]
            metadata.update(
                uid=old["uid"],
                creationTimestamp=old["creationTimestamp"],
                generation=old["generation"] + 1,
                resourceVersion=str(int(old["resourceVersion"]) + 1),
            )
            code = 200
        metadata["managedFields"] = [
            {
                "manager": request.query["fieldManager"][0],
                "operation": "Apply",
                "apiVersion": body["apiVersion"],
                "time": now,
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {}},
            }
        ]
        stored = {**body, "metadata": metadata}
        self.objects[target.collection, str(target.name)] = stored
        if stored.get("kind") == "Pod":
            # Just admitted: the kubelet has not started it yet.
            return code, {**stored, "status": {"phase": "Pending"}}
        return code, self._with_status(stored)

    @staticmethod
    def _with_status(obj: dict[str, Any]) -> dict[str, Any]:
        # The kubelet's part, in one step: a pod is Ready as soon as it is read.
        if obj.get("kind") == "Pod":
            return {
                **obj,
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
            }
        if obj.get("kind") == "Deployment":
            return {**obj, "status": {"replicas": 1, "availableReplicas": 1}}
        return obj


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A ``Status`` object, the body of every Kubernetes API error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@pytest.fixture
def kube_api() -> Iterator[FakeKubernetes]:
    """A running fake API server; its URL is ``.url``."""
    fake = FakeKubernetes()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            query = parse_qs(url.query)
            request = Recorded(self.command, url.path, query, headers, body)
            fake.requests.append(request)
            code, answer = fake.handle(request)
            payload = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PATCH = do_DELETE = _serve  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _secret(client: TestClient, namespace: str, key: str, value: str) -> None:
    url = f"/api/v1/namespaces/{namespace}/secrets/{key}"
    assert client.put(url, json={"value": value}).status_code in {200, 201}


CONNECTION = """\
    connection:
      masterUrl: "{{ inputs.master }}"
      oauthToken: "{{ secret('K8S_TOKEN') }}"
"""


def test_apply_get_and_delete_round_trip(client: TestClient, kube_api: FakeKubernetes) -> None:
    _secret(client, "demo", "K8S_TOKEN", TOKEN)
    source = f"""\
id: kubectl
namespace: demo
inputs:
  - {{id: master, type: STRING}}
tasks:
  - id: apply
    type: io.kestra.plugin.kubernetes.kubectl.Apply
{CONNECTION}    namespace: shop
    spec: |-
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: settings
        labels: {{app: shop}}
      data:
        colour: "{{{{ flow.id }}}}"
      ---
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 1
        selector: {{matchLabels: {{app: web}}}}
        template:
          metadata: {{labels: {{app: web}}}}
          spec:
            containers: [{{name: web, image: "nginx:1.27"}}]
  - id: list
    type: io.kestra.plugin.kubernetes.kubectl.Get
{CONNECTION}    namespace: shop
    resourceType: configmaps
    fetchType: FETCH
  - id: one
    type: io.kestra.plugin.kubernetes.kubectl.Get
{CONNECTION}    namespace: shop
    resourceType: Deployment
    apiGroup: apps
    apiVersion: v1
    resourcesNames: [web]
    fetchType: FETCH_ONE
  - id: store
    type: kubectl.Get
{CONNECTION}    namespace: shop
    resourceType: deploy
    apiGroup: apps
    fetchType: STORE
  - id: delete
    type: io.kestra.plugin.kubernetes.kubectl.Delete
{CONNECTION}    namespace: shop
    resourceType: cm
    apiVersion: v1
    resourcesNames: [settings, never-made]
  - id: delete_web
    type: io.kestra.plugin.kubernetes.kubectl.Delete
{CONNECTION}    namespace: shop
    resourceType: deployments
    apiGroup: apps
    apiVersion: v1
    resourcesNames: [web]
  - id: gone
    type: io.kestra.plugin.kubernetes.kubectl.Get
{CONNECTION}    namespace: shop
    resourceType: configmap
    resourcesNames: [settings]
    fetchType: FETCH
"""
    put_flow(client, source)
    execution = run(client, "demo", "kubectl", master=kube_api.url)
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    runs = task_runs(execution)

    applied = runs["apply"]["outputs"]["metadata"]
    assert [(m["name"], m["namespace"]) for m in applied] == [("settings", "shop"), ("web", "shop")]
    assert applied[0]["labels"] == {"app": "shop"}
    assert applied[0]["uid"]
    assert applied[0]["resourceVersion"] == "1"
    assert applied[0]["managedFields"][0]["manager"] == "flowplane"
    assert "applied configmap/settings" in lines
    # Server-side apply: discovery, then PATCH with the apply content type and a field manager.
    patches = [r for r in kube_api.requests if r.method == "PATCH"]
    assert [r.path for r in patches] == [
        "/api/v1/namespaces/shop/configmaps/settings",
        "/apis/apps/v1/namespaces/shop/deployments/web",
    ]
    assert all(r.headers["content-type"] == "application/apply-patch+yaml" for r in patches)
    assert all(r.query == {"fieldManager": ["flowplane"], "force": ["true"]} for r in patches)
    assert patches[0].body["data"] == {"colour": "kubectl"}
    assert patches[0].body["metadata"]["namespace"] == "shop"
    assert "GET /api/v1" in kube_api.calls()
    assert "GET /apis/apps/v1" in kube_api.calls()

    listed = runs["list"]["outputs"]
    assert listed["size"] == 1
    assert [m["name"] for m in listed["metadataItems"]] == ["settings"]
    assert listed["statusItems"] == [{"status": None}]

    one = runs["one"]["outputs"]
    assert one["size"] == 1
    assert one["metadataItem"]["name"] == "web"
    assert one["statusItem"] == {"status": {"replicas": 1, "availableReplicas": 1}}

    stored = runs["store"]["outputs"]
    assert stored["size"] == 1
    (record,) = [json.loads(line) for line in Path(stored["uri"]).read_text().splitlines()]
    assert record["metadata"]["name"] == "web"
    assert record["status"] == {"replicas": 1, "availableReplicas": 1}

    assert runs["delete"]["outputs"] == {}
    assert "deleted configmaps/settings in shop" in lines
    assert "configmaps/never-made not found in shop" in lines
    assert ("/api/v1/namespaces/shop/configmaps", "settings") not in kube_api.objects
    assert kube_api.objects == {}  # the Deployment went too (apps/v1)
    assert runs["gone"]["outputs"] == {"metadataItems": [], "statusItems": [], "size": 0}

    # The token went only in the Authorization header, and never into the run's record.
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in kube_api.requests)
    assert TOKEN not in json.dumps(execution)
    assert TOKEN not in "\n".join(lines)


def test_apply_updates_and_waits_until_ready(client: TestClient, kube_api: FakeKubernetes) -> None:
    _secret(client, "demo", "K8S_TOKEN", TOKEN)
    pod = """\
      apiVersion: v1
      kind: Pod
      metadata: {name: job}
      spec:
        containers: [{name: main, image: "busybox:1.36"}]"""
    source = f"""\
id: kubectl-wait
namespace: demo
inputs:
  - {{id: master, type: STRING}}
tasks:
  - id: first
    type: io.kestra.plugin.kubernetes.kubectl.Apply
{CONNECTION}    spec: |-
{pod}
  - id: again
    type: io.kestra.plugin.kubernetes.kubectl.Apply
{CONNECTION}    waitUntilReady: PT30S
    spec: |-
{pod}
  - id: ready
    type: io.kestra.plugin.kubernetes.kubectl.Get
{CONNECTION}    resourceType: pods
    resourcesNames: [job]
    waitUntilReady: PT30S
    fetchType: FETCH_ONE
"""
    put_flow(client, source)
    execution = run(client, "demo", "kubectl-wait", master=kube_api.url)
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    runs = task_runs(execution)
    # Kestra's default namespace; the second apply updated the same object.
    (first,) = runs["first"]["outputs"]["metadata"]
    (again,) = runs["again"]["outputs"]["metadata"]
    assert first["namespace"] == "default"
    assert (again["uid"], again["generation"]) == (first["uid"], 2)
    assert "pod/job is ready" in lines
    # Applied Pending, then read until its Ready condition was True.
    calls = [c for c in kube_api.calls() if c != "GET /api/v1"]
    assert calls[-3:] == [
        "PATCH /api/v1/namespaces/default/pods/job",
        "GET /api/v1/namespaces/default/pods/job",
        "GET /api/v1/namespaces/default/pods/job",
    ]
    assert runs["ready"]["outputs"]["statusItem"]["status"]["conditions"] == [
        {"type": "Ready", "status": "True"}
    ]


def test_api_refusals_fail_the_task_with_the_servers_message(
    client: TestClient, kube_api: FakeKubernetes
) -> None:
    _secret(client, "demo", "K8S_TOKEN", TOKEN)
    kube_api.forbidden.add(("DELETE", "/api/v1/namespaces/default/pods"))
    source = f"""\
id: kubectl-refused
namespace: demo
inputs:
  - {{id: master, type: STRING}}
tasks:
  - id: delete
    type: io.kestra.plugin.kubernetes.kubectl.Delete
{CONNECTION}    resourceType: pods
    resourcesNames: [job]
  - id: mismatch
    type: io.kestra.plugin.kubernetes.kubectl.Apply
    allowFailure: true
{CONNECTION}    namespace: shop
    spec: |-
      apiVersion: v1
      kind: ConfigMap
      metadata: {{name: c, namespace: other}}
"""
    put_flow(client, source)
    execution = run(client, "demo", "kubectl-refused", master=kube_api.url)
    lines = logs(client, execution["id"])
    assert execution["state"] == "FAILED"
    assert any("403 (Forbidden)" in line and "cannot delete resource" in line for line in lines)

    source = source.replace("  - id: delete\n", "  - id: delete\n    allowFailure: true\n")
    put_flow(client, source)
    execution = run(client, "demo", "kubectl-refused", master=kube_api.url)
    lines = logs(client, execution["id"])
    assert any("names namespace 'other' but the task applies to 'shop'" in x for x in lines)


def test_a_wrong_token_is_a_401(client: TestClient, kube_api: FakeKubernetes) -> None:
    _secret(client, "demo", "K8S_TOKEN", "not-the-token")
    source = f"""\
id: kubectl-401
namespace: demo
inputs:
  - {{id: master, type: STRING}}
tasks:
  - id: get
    type: io.kestra.plugin.kubernetes.kubectl.Get
{CONNECTION}    resourceType: pods
"""
    put_flow(client, source)
    execution = run(client, "demo", "kubectl-401", master=kube_api.url)
    lines = logs(client, execution["id"])
    assert execution["state"] == "FAILED"
    assert any("GET /api/v1: 401 (Unauthorized)" in line for line in lines), lines
    assert "not-the-token" not in "\n".join(lines)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("waitUntilRunning: PT1M", "waitUntilRunning is not supported"),
        ("connection: {keyStoreFile: /k.jks}", "keyStoreFile is not supported"),
    ],
)
def test_pod_and_java_only_properties_are_refused(extra: str, message: str) -> None:
    source = f"""\
id: kubectl-refused
namespace: demo
tasks:
  - id: get
    type: io.kestra.plugin.kubernetes.kubectl.Get
    resourceType: pods
    {extra}
"""
    with pytest.raises(InvalidFlowError, match=message):
        validate_flow(source)
