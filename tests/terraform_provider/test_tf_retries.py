"""A good API client: 502/503/504 are retried, and TF_LOG=DEBUG shows every request."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from test_tf_resources import flow_resource, flow_yaml
from tf_harness import ADMIN_TOKEN, Workspace


class FlakyProxy:
    """Forwards to the server, answering 503 to the first ``failures`` PUTs of a flow."""

    def __init__(self, upstream: str, failures: int) -> None:
        self.seen: list[tuple[str, str, int]] = []
        self.remaining = failures
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "PUT" and "/flows/" in self.path and proxy.remaining > 0:
                    proxy.remaining -= 1
                    proxy.seen.append((self.command, self.path, 503))
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = httpx.request(
                    self.command, upstream + self.path, content=body, headers=headers
                )
                proxy.seen.append((self.command, self.path, answer.status_code))
                self.send_response(answer.status_code)
                for key in ("Content-Type", "ETag"):
                    if key in answer.headers:
                        self.send_header(key, answer.headers[key])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_PUT = do_POST = do_DELETE = _forward  # noqa: N815

            def log_message(self, *_args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


def test_503_twice_then_success_is_one_clean_apply(tmp_path, server, tf_env):
    proxy = FlakyProxy(server.url, failures=2)
    log = tmp_path / "terraform.log"
    env = {**tf_env, "TF_LOG": "DEBUG", "TF_LOG_PATH": str(log)}
    workspace = Workspace(tmp_path / "ws", env, proxy.url, token=ADMIN_TOKEN)
    (workspace.workdir / "flaky.yaml").write_text(flow_yaml("tf.retry", "flaky"))
    workspace.write(flow_resource("flaky", "flaky.yaml"))
    try:
        workspace.apply()
    finally:
        proxy.http.shutdown()
        proxy.http.server_close()
    puts = [s for s in proxy.seen if s[0] == "PUT"]
    assert puts == [("PUT", "/api/v1/flows/tf.retry/flaky", status) for status in (503, 503, 201)]
    assert server.flow("tf.retry", "flaky")["revision"] == 1

    text = log.read_text()
    requests = [line for line in text.splitlines() if "flowplane request" in line]
    assert any("status=503" in line and "attempt=1" in line for line in requests), requests
    assert any("status=201" in line and "attempt=3" in line for line in requests), requests
    assert any("/api/v1/whoami" in line for line in requests)
    assert ADMIN_TOKEN not in text
