"""Run a script task as a Kubernetes pod: create it, follow it, read its log, delete it.

The pod has one container, ``main``, that runs the task's command in an empty
working directory. Its log is followed while it runs; stdout and stderr arrive
interleaved (the log API merges them), and ``::{"outputs":{...}}::`` lines set
outputs as they do for a local process. The exit code of ``main`` is the task's.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # the optional [kubernetes] extra: without it, only this runner is unavailable
    import urllib3
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
except ImportError as missing:
    _MISSING_EXTRA: ImportError | None = missing
else:
    _MISSING_EXTRA = None

from controlplane.errors import FlowplaneError
from controlplane.runners.outputs import parse_output_line

MAIN_CONTAINER = "main"
# Kestra's path, so scripts written for Kestra find their files where they expect.
WORKING_DIR = "/kestra/working-dir"
_WORKING_VOLUME = "working-dir"
# Every API call but the log stream gets an answer within this, or fails.
_REQUEST_TIMEOUT = 30.0
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]+")
_NAME_PART = re.compile(r"[^a-z0-9-]+")
_TERMINAL_PHASES = {"Succeeded", "Failed"}
_STARTED_PHASES = {"Running", *_TERMINAL_PHASES}


class KubernetesError(FlowplaneError):
    """The cluster refused or lost the pod; the message says what the API answered."""


@dataclass(frozen=True)
class ClusterConnection:
    """How to reach the API server; every field is optional (Kestra's ``config``)."""

    master_url: str | None = None
    oauth_token: str | None = None
    username: str | None = None
    password: str | None = None
    ca_cert_data: str | None = None
    ca_cert_file: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None
    trust_certs: bool = False
    disable_hostname_verification: bool = False


@dataclass(frozen=True)
class PodRequest:
    """Everything the pod is made of, already rendered."""

    namespace: str
    name_prefix: str
    image: str
    command: list[str]
    env: Mapping[str, str] = field(default_factory=dict)
    pull_policy: str = "Always"
    labels: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    service_account_name: str | None = None
    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)
    delete: bool = True
    # Seconds: until the pod runs, from its start until it ends, and overall (the task timeout).
    wait_until_running: float = 600.0
    wait_until_completion: float = 3600.0
    timeout: float | None = None


@dataclass
class PodResult:
    """How the pod ended."""

    name: str
    exit_code: int = -1
    outputs: dict[str, Any] = field(default_factory=dict)
    timed_out: str | None = None
    killed: bool = False


@contextmanager
def api_client(connection: ClusterConnection | None) -> Iterator[k8s.ApiClient]:
    """An API client for ``connection``; without one, in-cluster config or the kubeconfig."""
    if _MISSING_EXTRA is not None:
        raise KubernetesError(
            "this task runs on Kubernetes (taskRunner ...kubernetes.runner.Kubernetes), which "
            "needs the kubernetes extra on every worker: pip install 'flowplane[kubernetes]' "
            f"({_MISSING_EXTRA})"
        )
    configuration = k8s.Configuration()
    if connection is None or connection.master_url is None:
        _load_default_config(configuration)
    if connection is not None:
        _apply_connection(configuration, connection)
    with k8s.ApiClient(configuration) as client:
        yield client


def _load_default_config(configuration: k8s.Configuration) -> None:
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as exc:
        raise KubernetesError(
            "no Kubernetes cluster configured: set taskRunner.config.masterUrl, run the worker "
            f"in a cluster, or give it a kubeconfig ({exc})"
        ) from None


def _apply_connection(configuration: k8s.Configuration, connection: ClusterConnection) -> None:
    if connection.master_url:
        configuration.host = connection.master_url.rstrip("/")
    if connection.oauth_token:
        configuration.api_key = {"authorization": connection.oauth_token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
    if connection.username is not None:
        configuration.username = connection.username
        configuration.password = connection.password or ""
    if connection.ca_cert_data:
        configuration.ca_cert_data = pem_text(connection.ca_cert_data)
    if connection.ca_cert_file:
        configuration.ssl_ca_cert = connection.ca_cert_file
    if connection.client_cert_file:
        configuration.cert_file = connection.client_cert_file
    if connection.client_key_file:
        configuration.key_file = connection.client_key_file
    if connection.trust_certs:
        configuration.verify_ssl = False
    if connection.disable_hostname_verification:
        configuration.assert_hostname = False


def pem_text(data: str) -> str:
    """PEM text from Kestra's base64 data (whitespace dropped), or PEM given as is."""
    if data.lstrip().startswith("-----BEGIN"):
        return data
    return base64.b64decode("".join(data.split())).decode("ascii")


def private_pem_file(directory: Path, name: str, data: str) -> str:
    """``data`` (PEM, or base64 as in a kubeconfig) written to a file only the worker reads.

    The client loads client certificates and keys from files only.
    """
    path = directory / name
    path.write_bytes(b"")
    path.chmod(0o600)
    path.write_text(pem_text(data), encoding="ascii")
    return str(path)


def pod_manifest(request: PodRequest, name: str) -> dict[str, Any]:
    """The Pod object sent to ``POST /api/v1/namespaces/{namespace}/pods``."""
    resources: dict[str, dict[str, str]] = {}
    if request.requests:
        resources["requests"] = dict(request.requests)
    if request.limits:
        resources["limits"] = dict(request.limits)
    container: dict[str, Any] = {
        "name": MAIN_CONTAINER,
        "image": request.image,
        "imagePullPolicy": request.pull_policy,
        "command": list(request.command),
        "workingDir": WORKING_DIR,
        "env": [
            {"name": key, "value": value}
            for key, value in {**request.env, "WORKING_DIR": WORKING_DIR}.items()
        ],
        "volumeMounts": [{"name": _WORKING_VOLUME, "mountPath": WORKING_DIR}],
    }
    if resources:
        container["resources"] = resources
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        # An emptyDir is writable whatever user the image runs as.
        "volumes": [{"name": _WORKING_VOLUME, "emptyDir": {}}],
    }
    if request.node_selector:
        spec["nodeSelector"] = dict(request.node_selector)
    if request.service_account_name:
        spec["serviceAccountName"] = request.service_account_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": request.namespace,
            "labels": {key: label_value(value) for key, value in request.labels.items()},
        },
        "spec": spec,
    }


def label_value(value: str) -> str:
    """``value`` made a valid label value: at most 63 of ``[A-Za-z0-9._-]``, alphanumeric ends."""
    return _LABEL_VALUE.sub("-", value).strip("._-")[:63].rstrip("._-")


def pod_name(prefix: str) -> str:
    """A fresh DNS-1123 pod name from ``prefix`` and a random suffix."""
    stem = _NAME_PART.sub("-", prefix.lower()).strip("-")[:50].rstrip("-") or "task"
    return f"{stem}-{secrets.token_hex(4)}"


def run_pod(
    client: k8s.ApiClient,
    request: PodRequest,
    *,
    on_line: Callable[[str, str], None],
    should_stop: Callable[[], bool] = lambda: False,
    poll_interval: float = 1.0,
) -> PodResult:
    """Create the pod, stream its log to ``on_line(level, text)`` and wait for it to end.

    On timeout or when ``should_stop`` turns true the pod is deleted at once; otherwise
    it is deleted when it ends, unless ``request.delete`` is false. Refusals and
    failures of the API raise ``KubernetesError``.
    """
    core = k8s.CoreV1Api(client)
    namespace = request.namespace
    name = pod_name(request.name_prefix)
    try:
        core.create_namespaced_pod(
            namespace,
            k8s.V1Pod.model_validate(pod_manifest(request, name)),
            _request_timeout=_REQUEST_TIMEOUT,
        )
    except (ApiException, urllib3.exceptions.HTTPError) as exc:
        raise KubernetesError(
            f"could not create a pod in namespace {namespace}: {describe_error(exc)}"
        ) from None
    on_line("INFO", f"pod {namespace}/{name} created")
    result = PodResult(name=name)
    log = _LogFollower(core, namespace, name, on_line, result.outputs)
    abandoned = True
    try:
        _wait(core, request, result, log=log, should_stop=should_stop, poll_interval=poll_interval)
        abandoned = result.timed_out is not None or result.killed
    except (ApiException, urllib3.exceptions.HTTPError) as exc:
        raise KubernetesError(f"lost pod {namespace}/{name}: {describe_error(exc)}") from None
    finally:
        if abandoned:
            # A pod we stop following must not keep running (and costing) unseen.
            _delete(core, namespace, name, on_line, grace_seconds=0)
        log.finish()
        if not abandoned and request.delete:
            _delete(core, namespace, name, on_line, grace_seconds=None)
    return result


def _wait(
    core: k8s.CoreV1Api,
    request: PodRequest,
    result: PodResult,
    *,
    log: _LogFollower,
    should_stop: Callable[[], bool],
    poll_interval: float,
) -> None:
    """Poll the pod until it ends, a time limit passes, or the run is stopped."""
    created = time.monotonic()
    started: float | None = None
    last_waiting = ""
    while True:
        pod = core.read_namespaced_pod(
            result.name, request.namespace, _request_timeout=_REQUEST_TIMEOUT
        )
        phase = pod.status.phase if pod.status else None
        now = time.monotonic()
        if phase in _STARTED_PHASES and started is None:
            started = now
            log.start()
        if phase in _TERMINAL_PHASES:
            result.exit_code = _exit_code(pod)
            return
        waiting = _waiting_reason(pod)
        if waiting and waiting != last_waiting:
            log.on_line("INFO", f"pod pending: {waiting}")
            last_waiting = waiting
        if request.timeout is not None and now - created >= request.timeout:
            result.timed_out = f"timed out after {request.timeout:g}s"
        elif started is None and now - created >= request.wait_until_running:
            result.timed_out = f"pod did not start within {request.wait_until_running:g}s" + (
                f" ({last_waiting})" if last_waiting else ""
            )
        elif started is not None and now - started >= request.wait_until_completion:
            result.timed_out = f"pod did not complete within {request.wait_until_completion:g}s"
        elif should_stop():
            result.killed = True
        if result.timed_out or result.killed:
            return
        time.sleep(poll_interval)


def _exit_code(pod: k8s.V1Pod) -> int:
    status = pod.status or k8s.V1PodStatus()
    for container in status.container_statuses or []:
        if container.name == MAIN_CONTAINER and container.state and container.state.terminated:
            return int(container.state.terminated.exit_code)
    # Failed with no terminated container: evicted, or the node went away.
    reason = " ".join(filter(None, [status.reason, status.message]))
    raise KubernetesError(f"pod failed: {reason or 'no container status'}")


def _waiting_reason(pod: k8s.V1Pod) -> str:
    """Why a pending pod is not running yet, as the cluster says it."""
    status = pod.status
    if status is None:
        return ""
    for container in status.container_statuses or []:
        waiting = container.state.waiting if container.state else None
        if waiting and waiting.reason:
            return ": ".join(filter(None, [waiting.reason, waiting.message]))
    for condition in status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False":
            return ": ".join(filter(None, [condition.reason, condition.message]))
    return ""


def _delete(
    core: k8s.CoreV1Api,
    namespace: str,
    name: str,
    on_line: Callable[[str, str], None],
    *,
    grace_seconds: int | None,
) -> None:
    try:
        core.delete_namespaced_pod(
            name,
            namespace,
            grace_period_seconds=grace_seconds,
            _request_timeout=_REQUEST_TIMEOUT,
        )
    except ApiException as exc:
        if exc.status != 404:  # noqa: PLR2004 - already gone is what we wanted
            on_line("WARN", f"could not delete pod {namespace}/{name}: {describe_error(exc)}")
            return
    except urllib3.exceptions.HTTPError as exc:
        on_line("WARN", f"could not delete pod {namespace}/{name}: {exc}")
        return
    on_line("INFO", f"pod {namespace}/{name} deleted")


def describe_error(exc: Exception) -> str:
    """The API's own words for a refusal: ``403 Forbidden: pods is forbidden: …``."""
    if not isinstance(exc, ApiException):
        return str(exc)
    message = ""
    try:
        body = json.loads(exc.body or "")
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
    except ValueError:
        message = (exc.body or "").strip()
    head = f"{exc.status} {exc.reason}".strip()
    return f"{head}: {message}" if message else head


class _LogFollower:
    """Follows the ``main`` container's log in a thread, line by line."""

    def __init__(
        self,
        core: k8s.CoreV1Api,
        namespace: str,
        name: str,
        on_line: Callable[[str, str], None],
        outputs: dict[str, Any],
    ) -> None:
        self._core = core
        self._namespace = namespace
        self._name = name
        self.on_line = on_line
        self._outputs = outputs
        self._thread: threading.Thread | None = None
        self._response: Any = None
        self._lock = threading.Lock()
        self._opened = threading.Event()

    def start(self) -> None:
        """Open the stream; return once the API has answered, so no early line is missed."""
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()
        self._opened.wait(timeout=_REQUEST_TIMEOUT)

    def finish(self, grace: float = 5.0) -> None:
        """Wait for the stream to end (the API ends it when the container does)."""
        if self._thread is None:
            return
        self._thread.join(timeout=grace)
        with self._lock:
            if self._thread.is_alive() and self._response is not None:
                self._response.shutdown()
        self._thread.join(timeout=grace)

    def _follow(self) -> None:
        try:
            # Without preloading, the client hands back the raw urllib3 response.
            response: Any = self._core.read_namespaced_pod_log(
                self._name,
                self._namespace,
                container=MAIN_CONTAINER,
                follow=True,
                _preload_content=False,
                # Connect within the usual limit; the stream itself may idle for long.
                _request_timeout=(_REQUEST_TIMEOUT, 24 * 3600.0),
            )
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            self.on_line("WARN", f"could not read the pod log: {describe_error(exc)}")
            return
        finally:
            self._opened.set()
        with self._lock:
            self._response = response
        pending = b""
        try:
            for chunk in response.stream(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    self._line(raw)
            if pending:
                self._line(pending)
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            # Shut down by finish(), or cut by the server: what was read is kept.
            pass
        finally:
            response.release_conn()

    def _line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        outputs = parse_output_line(line)
        if outputs is not None:
            self._outputs.update(outputs)
        else:
            self.on_line("INFO", line)
