"""The Docker runner's log reader against an engine that breaks a log stream.

Podman, when it fails after a log answer's headers went out, writes its JSON
error into the multiplexed body (seen in CI: ``read /proc/<pid>/cgroup: no
such process`` right after a short container exited). The server here speaks
the Docker Engine API's log endpoint exactly that way, with the error body
taken from that CI run; it proves the runner neither prints the error as the
task's output nor loses the lines, and that it retries a refused whole read.
"""

from __future__ import annotations

import gc
import json
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

docker = pytest.importorskip("docker")

from controlplane.runners.docker import _pump  # noqa: E402 - after the extra's check

PODMAN_ERROR = json.dumps(
    {
        "cause": "no such process",
        "message": "failed to obtain logs for Container 'c0ffee': "
        "read /proc/5519/cgroup: no such process",
        "response": 500,
    }
).encode()


def frame(stream: int, payload: bytes) -> bytes:
    """One multiplexed frame: stream byte, three zero bytes, big-endian length, payload."""
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


class Engine:
    """What the fake engine answers, and what it was asked."""

    def __init__(self, whole_refusals: int) -> None:
        self.whole_refusals = whole_refusals
        self.log_requests: list[dict[str, list[str]]] = []


def _handler(engine: Engine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            if url.path.endswith("/logs"):
                engine.log_requests.append(query)
                multiplexed = "application/vnd.docker.multiplexed-stream"
                if query.get("follow") == ["1"]:
                    # Headers already sent as a success, then the error in the body.
                    self._send(200, frame(1, b"hello\n") + PODMAN_ERROR, multiplexed)
                elif engine.whole_refusals > 0:
                    engine.whole_refusals -= 1
                    self._send(500, PODMAN_ERROR, "application/json")
                else:
                    body = frame(1, b"hello\n") + frame(1, b'world\n::{"outputs":{"n":1}}::\n')
                    self._send(200, body, multiplexed)
                return
            if url.path.endswith("/json"):  # the SDK's own log reader inspects first
                self._send(200, b'{"Id":"c0ffee","Config":{"Tty":false}}', "application/json")
                return
            self._send(404, b'{"message":"not here"}', "application/json")

        def do_POST(self) -> None:
            if urlparse(self.path).path.endswith("/wait"):
                self._send(200, b'{"StatusCode":0}', "application/json")
                return
            self._send(404, b'{"message":"not here"}', "application/json")

    return Handler


@pytest.fixture
def engine_url() -> Iterator[tuple[str, Engine]]:
    engine = Engine(whole_refusals=2)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(engine))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}", engine
    finally:
        server.shutdown()
        server.server_close()


def test_an_error_written_into_the_stream_is_not_output_and_no_line_is_lost(
    engine_url: tuple[str, Engine],
) -> None:
    url, engine = engine_url
    client = docker.DockerClient(base_url=url, version="1.41")
    container = docker.models.containers.Container(attrs={"Id": "c0ffee"}, client=client)
    lines: list[tuple[str, str]] = []
    outputs: dict[str, object] = {}
    _pump(container, "INFO", lambda level, text: lines.append((level, text)), outputs)
    assert lines == [("INFO", "hello"), ("INFO", "world")]
    assert outputs == {"n": 1}
    # The follow stream, two refused whole reads, then the one that answered.
    assert [request["follow"] for request in engine.log_requests] == [["1"], ["0"], ["0"], ["0"]]
    assert all(request["stderr"] == ["0"] for request in engine.log_requests)


def test_a_whole_read_refused_every_time_is_reported(engine_url: tuple[str, Engine]) -> None:
    url, engine = engine_url
    engine.whole_refusals = 1000
    client = docker.DockerClient(base_url=url, version="1.41")
    container = docker.models.containers.Container(attrs={"Id": "c0ffee"}, client=client)
    lines: list[tuple[str, str]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _pump(container, "INFO", lambda level, text: lines.append((level, text)), {})
        client.close()
        gc.collect()
    # Every refused answer was closed: none left its socket to the garbage collector.
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert lines[0] == ("INFO", "hello")
    assert len(lines) == 2
    level, text = lines[1]
    assert level == "WARN"
    assert text.startswith("the container's log stream ended early")
    assert "no such process" in text
