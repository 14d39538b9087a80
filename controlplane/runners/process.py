"""Run a script task as a subprocess in its working directory, with only the env it is given."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.runners.outputs import parse_output_line

# A shell reports a child killed by signal N as exit code 128 + N.
_SHELL_SIGNAL_BASE = 128
# How often the timeout and the stop request are checked while the process runs.
_TICK = 0.1


@dataclass
class ProcessResult:
    """What a finished process left behind."""

    exit_code: int
    outputs: dict[str, Any] = field(default_factory=dict)
    timed_out: bool = False
    killed: bool = False

    @property
    def signal(self) -> int | None:
        """The signal that ended the script, if one did (seen directly or through a shell)."""
        if self.exit_code < 0:
            return -self.exit_code
        if _SHELL_SIGNAL_BASE < self.exit_code < _SHELL_SIGNAL_BASE + signal.NSIG:
            return self.exit_code - _SHELL_SIGNAL_BASE
        return None


def run_process(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    on_line: Callable[[str, str], None],
    timeout: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    user: int | None = None,
    group: int | None = None,
) -> ProcessResult:
    """Run ``argv``, streaming each stdout/stderr line to ``on_line(level, text)``.

    ``env`` is the whole environment: nothing of the server's own is added, as
    it holds the admin token and database URL. ``user`` and ``group`` switch the
    child to that uid/gid (with no supplementary groups) before it executes.
    The process is killed (with its process group) on timeout or when
    ``should_stop`` turns true; the caller learns which from the result.
    """
    process = start_process(argv, cwd=cwd, env=env, user=user, group=group)
    return watch_process(process, on_line=on_line, timeout=timeout, should_stop=should_stop)


def start_process(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    user: int | None = None,
    group: int | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[str]:
    """Start ``argv`` in a session of its own, its output on pipes for ``watch_process``."""
    return subprocess.Popen(  # noqa: S603 - argv comes from the flow author, by design
        argv,
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        start_new_session=True,
        user=user,
        group=group,
        extra_groups=[] if user is not None else None,
        pass_fds=pass_fds,
    )


def watch_process(  # noqa: C901 - exit, timeout and stop are handled in one wait loop
    process: subprocess.Popen[str],
    *,
    on_line: Callable[[str, str], None],
    timeout: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> ProcessResult:
    """Stream a started process's output to ``on_line`` until it exits, is timed out or stopped."""
    result = ProcessResult(exit_code=-1)

    def pump(stream: Any, level: str) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            # Only stdout carries outputs, as in Kestra.
            outputs = parse_output_line(line) if level == "INFO" else None
            if outputs is not None:
                result.outputs.update(outputs)
                continue
            on_line(level, line)

    readers = [
        threading.Thread(target=pump, args=(process.stdout, "INFO"), daemon=True),
        threading.Thread(target=pump, args=(process.stderr, "WARN"), daemon=True),
    ]
    for reader in readers:
        reader.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    with _exit_watch(process) as wait_for_exit:
        while True:
            exit_code = wait_for_exit(_TICK)
            if exit_code is not None:
                result.exit_code = exit_code
                break
            if deadline is not None and time.monotonic() >= deadline:
                result.timed_out = True
            elif should_stop():
                result.killed = True
            else:
                continue
            # The group holds bwrap (whose death takes its PID namespace with it,
            # --die-with-parent) or, unsandboxed, the shell and its children.
            os.killpg(process.pid, signal.SIGKILL)
            result.exit_code = process.wait()
            break
    for reader, stream in zip(readers, (process.stdout, process.stderr), strict=True):
        reader.join(timeout=5)
        # A process that left the group (setsid) may still hold the pipe; closing it
        # under its blocked reader would deadlock on the buffer's lock, so leave it.
        if stream is not None and not reader.is_alive():
            stream.close()
    return result


@contextlib.contextmanager
def _exit_watch(process: subprocess.Popen[str]) -> Iterator[Callable[[float], int | None]]:
    """A ``wait(seconds)`` that returns the exit code as soon as the process ends, else None.

    ``Popen.wait(timeout)`` polls with sleeps that grow to 50 ms, so a script
    was seen to end up to 50 ms late (25 ms on average, on every task). A
    pidfd (Linux 5.3) becomes readable the moment the process exits; without
    one, the polling wait is the fallback.
    """
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        yield lambda seconds: _polled_wait(process, seconds)
        return
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)

    def wait(seconds: float) -> int | None:
        if not poller.poll(int(seconds * 1000)):
            return process.poll()
        return process.wait()

    try:
        yield wait
    finally:
        os.close(pidfd)


def _polled_wait(process: subprocess.Popen[str], seconds: float) -> int | None:
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None
