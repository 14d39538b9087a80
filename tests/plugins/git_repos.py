"""Real Git repositories for the git family's tests: made with ``git``, served over HTTP.

``make_repo`` builds a repository in a temp directory. ``GitHttpServer``
serves a directory of repositories with git's own smart-HTTP CGI
(``git http-backend``) behind HTTP basic auth, so clones and ``ls-remote``
go through the real protocol and the real credential prompt.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; its output, stripped."""
    result = subprocess.run(
        # Work dirs are handed to the sandbox user; the test reads them as root.
        ["git", "-c", "safe.directory=*", *args],
        cwd=repo,
        env={**os.environ, **_GIT_ENV},
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    """Write ``files`` and commit them; the new commit's sha."""
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_repo(path: Path) -> Path:
    """An empty repository whose branch is ``main``."""
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "--initial-branch=main")
    # Served over HTTP, the repository must allow being read by the backend.
    git(path, "config", "http.receivepack", "false")
    return path


class GitHttpServer:
    """Serves the repositories under ``root`` over smart HTTP, asking for ``user:password``."""

    def __init__(self, root: Path, user: str, password: str) -> None:
        self.root = root
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.seen_authorizations: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.handle(self)

            def do_POST(self) -> None:
                server.handle(self)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """The base URL; a repository ``name`` is at ``{url}/{name}``."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        """Check the credentials, then hand the request to ``git http-backend``."""
        authorization = request.headers.get("Authorization")
        if authorization != self.expected:
            if authorization:
                self.seen_authorizations.append(authorization)
            request.send_response(401)
            request.send_header("WWW-Authenticate", 'Basic realm="git"')
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        path, _, query = request.path.partition("?")
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        env = {
            **os.environ,
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": request.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length),
            "REMOTE_USER": "ada",
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
        }
        result = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        request.send_response(status)
        for name, value in headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.thread.join()
        self.httpd.server_close()
