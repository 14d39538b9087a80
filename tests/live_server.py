"""Live servers for tests: the app on uvicorn in a thread, or ``flowplane server`` in a process.

Test-only plumbing (not for users, unlike ``controlplane.testing``): a free port, the
usual SQLite-in-tmp settings with an admin token, and a wait for a server to answer.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from controlplane.settings import Settings
from tests.conftest import ADMIN_TOKEN


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def live_settings(data_dir: Path, **overrides: Any) -> Settings:
    """SQLite in ``data_dir``, the test admin token, no scheduler, no Git poller, no worker."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{data_dir / 'flowplane.db'}",
        "data_dir": data_dir,
        "admin_token": ADMIN_TOKEN,
        "workers": 0,
        "scheduler": False,
        "poll_sources": False,
        **overrides,
    }
    return Settings(**values)


@contextmanager
def serve_in_thread(app: FastAPI, **config: Any) -> Iterator[str]:
    """Serve ``app`` on uvicorn in a thread on a free port; yield its base URL.

    ``config`` goes to ``uvicorn.Config`` (``backlog``, ``lifespan``...). The socket is
    bound before the thread starts, so the port cannot be taken in between.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options: dict[str, Any] = {"log_level": "warning", "lifespan": "on", **config}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the live server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@contextmanager
def server_process(
    command: list[str], env: dict[str, str], log_path: Path, *, probe: str, seconds: float
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` with its output in ``log_path``; yield once ``probe`` answers 200.

    The server is stopped (terminated, killed if it will not go) on the way out; if it
    exits or does not answer within ``seconds``, the test fails with its log.
    """
    log = log_path.open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + seconds
        while True:
            try:
                if httpx.get(probe, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"the server did not answer {probe}: {log_path.read_text()}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
