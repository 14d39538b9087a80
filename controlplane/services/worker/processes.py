"""Workers as processes of their own beside the server (``flowplane server --worker-processes N``).

An embedded worker is a thread of the server, so it shares one interpreter
lock with request handling. On PostgreSQL, where each statement costs more
Python than on SQLite, one embedded worker fell behind 50 webhook-started
runs a second (backlog of ~300, p95 6.3 s) while two worker processes kept
up (p95 16 ms; docs/performance.md). Each process runs the same loop as
``flowplane worker``, on the server's database and data directory.

A worker process that exits without being asked to (killed, out of memory)
is started again after a backoff, so the server keeps the number it was
given; the runs it held are taken over when their leases expire.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from controlplane.logging import get_logger

log = get_logger(__name__)

_MAX_BACKOFF = 30.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# Set for the worker processes a server starts: the server's pid.
PARENT_PID = "FLOWPLANE_PARENT_PID"
# Workers up this long after the last exit: the next exit starts the backoff over.
_STEADY_SECONDS = 60.0


class WorkerProcesses:
    """``count`` ``flowplane worker`` processes, started again when one exits."""

    def __init__(self, count: int, database_url: str, data_dir: Path) -> None:
        """Workers on ``database_url`` with working files under ``data_dir``."""
        self.count = count
        self.command = [sys.executable, "-m", "controlplane.cli", "worker"]
        # Through the environment, not argv: a database URL may carry a password,
        # and any local user can read a process's command line.
        self.env = {
            **os.environ,
            "FLOWPLANE_DATABASE_URL": database_url,
            "FLOWPLANE_DATA_DIR": str(data_dir),
            PARENT_PID: str(os.getpid()),
        }
        self._processes: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, name="worker-processes", daemon=True)

    def start(self) -> None:
        """Start the processes, and the thread that starts again any that exits."""
        with self._lock:
            self._processes = [self._spawn() for _ in range(self.count)]
        self._watcher.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask each worker to finish the run in hand and exit; kill those still running after."""
        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join()
        with self._lock:
            processes = list(self._processes)
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker_process_killed", pid=process.pid)
                process.kill()
                process.wait()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # Its logs go where the server's go. Its parent-death signal (end_with_parent)
        # follows the spawning thread: this one or the watcher, both alive until stop().
        process = subprocess.Popen(self.command, env=self.env)  # noqa: S603 - our own CLI
        log.info("worker_process_started", pid=process.pid)
        return process

    def _watch(self) -> None:
        failures, last_exit = 0, 0.0
        while not self._stop.wait(1.0):
            with self._lock:
                exited = [i for i, p in enumerate(self._processes) if p.poll() is not None]
            if not exited:
                if time.monotonic() - last_exit > _STEADY_SECONDS:
                    failures = 0
                continue
            failures, last_exit = failures + 1, time.monotonic()
            for index in exited:
                code = self._processes[index].returncode
                log.warning("worker_process_exited", pid=self._processes[index].pid, code=code)
            # A worker that cannot start (a bad database URL, say) is not restarted in a loop.
            if self._stop.wait(min(_MAX_BACKOFF, 2.0 ** (failures - 1))):
                return
            with self._lock:
                for index in exited:
                    self._processes[index] = self._spawn()


def end_with_parent() -> None:
    """In a worker process the server started: exit when the server dies, even by SIGKILL.

    Called by ``flowplane worker`` itself (a ``preexec_fn`` is unsafe in a
    server with threads). The parent's pid comes through the environment: if
    the server died before this call, the worker exits at once.
    """
    parent = os.environ.get(PARENT_PID)
    if parent is None:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the server's own stop() still ends it
        return
    if os.getppid() != int(parent):
        raise SystemExit(0)
