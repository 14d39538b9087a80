"""A real HTTP server answering like the Kubernetes API, from contracts written from its reference.

Each contract in ``contracts/`` lists exchanges: a request (method and path) and the
responses the API gives to it, in order (the last one repeats, as a pod's status
does once it has ended). ``{name}`` and the other placeholders in a contract answer
are filled from the pod the runner created, as the real API echoes what it was sent.
Every request is recorded so the tests can check what the runner sent.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

CONTRACTS = Path(__file__).parent / "contracts"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class ContractServer:
    contract: dict[str, Any]
    requests: list[Recorded] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    deleted: threading.Event = field(default_factory=threading.Event)
    served: dict[int, int] = field(default_factory=dict)
    url: str = ""

    def pod(self) -> dict[str, Any]:
        """The Pod object the runner POSTed."""
        posts = [r.body for r in self.requests if r.method == "POST"]
        assert len(posts) == 1, self.requests
        return posts[0]

    def calls(self) -> list[str]:
        """``METHOD path`` of each request, with the pod name as ``{name}``."""
        name = self.values.get("name", "{name}")
        return [f"{r.method} {r.path.replace(name, '{name}')}" for r in self.requests]

    def answer(self, method: str, path: str) -> dict[str, Any] | None:
        for index, exchange in enumerate(self.contract["exchanges"]):
            request = exchange["request"]
            expected = request["path"].replace("{name}", self.values.get("name", "{name}"))
            if request["method"] == method and expected == path:
                count = self.served.get(index, 0)
                self.served[index] = count + 1
                responses = exchange["responses"]
                return dict(responses[min(count, len(responses) - 1)])
        return None

    def fill(self, value: Any) -> Any:
        """Put the created pod's values where the recording has placeholders."""
        if isinstance(value, str):
            for key, replacement in self.values.items():
                value = value.replace("{" + key + "}", replacement)
            return value
        if isinstance(value, list):
            return [self.fill(item) for item in value]
        if isinstance(value, dict):
            return {key: self.fill(item) for key, item in value.items()}
        return value


def _handler(server: ContractServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            server.requests.append(
                Recorded(
                    self.command,
                    url.path,
                    parse_qs(url.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
            )
            if self.command == "POST" and isinstance(body, dict):
                labels = body["metadata"].get("labels", {})
                server.values.update(
                    name=body["metadata"]["name"],
                    command=body["spec"]["containers"][0]["command"][-1],
                    execution=labels.get("flowplane.io/execution-id", ""),
                    taskrun=labels.get("flowplane.io/taskrun-id", ""),
                )
            answer = server.answer(self.command, url.path)
            if answer is None:
                server.unexpected.append(f"{self.command} {self.path}")
                answer = {"status": 404, "body": {"kind": "Status", "code": 404}}
            if self.command == "DELETE":
                server.deleted.set()
            self.send_response(answer["status"])
            for key, value in answer.get("headers", {}).items():
                self.send_header(key, value)
            if "text" in answer:
                # A followed log: the body ends when the connection closes.
                self.end_headers()
                self.wfile.write(answer["text"].encode())
                self.wfile.flush()
                if answer.get("hold_until") == "DELETE":
                    server.deleted.wait(timeout=60)
                return
            payload = json.dumps(server.fill(answer["body"])).encode()
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _serve  # noqa: N815

    return Handler


@pytest.fixture
def kube() -> Iterator[Any]:
    """Start a server for a named contract: ``server = kube("success")``; ``tls``: HTTPS."""
    started: list[tuple[ThreadingHTTPServer, threading.Thread, ContractServer]] = []

    def start(name: str, tls: ssl.SSLContext | None = None) -> ContractServer:
        contract = json.loads((CONTRACTS / f"{name}.json").read_text(encoding="utf-8"))
        fake = ContractServer(contract)
        http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
        http.daemon_threads = True
        if tls is not None:  # HTTPS, with the client certificate the context asks for
            http.socket = tls.wrap_socket(http.socket, server_side=True)
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        scheme = "https" if tls is not None else "http"
        fake.url = f"{scheme}://127.0.0.1:{http.server_address[1]}"
        started.append((http, thread, fake))
        return fake

    yield start
    for http, thread, fake in started:
        fake.deleted.set()
        http.shutdown()
        http.server_close()
        thread.join(timeout=5)
