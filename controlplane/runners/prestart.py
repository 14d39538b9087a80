"""Sandboxes started ahead of the script tasks that will use them.

Most of a short script task's time is its start: bwrap building the mount and
PID namespaces, the switch to ``nobody`` and the limits, then the interpreter
(about 35 ms a task here, docs/performance.md). A worker running script tasks
keeps one sandbox started ahead, its program (``launcher``) waiting on a pipe.
The next task takes it: the worker renames the sandbox's slot directory to the
task's working directory, writes the task's files there, and sends the command,
which the launcher executes, or a Python script, which it runs in its already
started interpreter. Meanwhile the pool's thread starts the next sandbox.

Each sandbox still serves exactly one task, started with nothing of any task
in it: the pool saves the wait, not the isolation.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from controlplane.logging import get_logger
from controlplane.runners import launcher
from controlplane.runners.process import start_process
from controlplane.runners.sandbox import Sandbox, SandboxError

log = get_logger(__name__)

# How long a sandbox no longer needed gets to end on its own before it is killed.
_END_WAIT = 2.0
# How long a task waits for a sandbox still starting before it starts its own.
_START_WAIT = 10.0
_LAUNCHER_SOURCE = Path(launcher.__file__).read_text(encoding="utf-8")


@dataclass
class Prestarted:
    """One sandbox waiting for its task."""

    process: subprocess.Popen[str]
    slot: Path
    # The write end of the pipe the launcher reads its task from; -1 once sent.
    tasks: int
    # The read end of the pipe on which the launcher says it has started; -1 once read.
    started: int

    def wait_started(self, timeout: float) -> Literal["started", "ended", "starting"]:
        """Whether the launcher has started (its mounts made) within ``timeout`` seconds.

        ``ended``: the sandbox ended before its launcher ran (the pipe closed
        with nothing on it); ``starting``: it is still starting.
        """
        if self.started == -1:
            return "started"
        try:
            ready, _, _ = select.select([self.started], [], [], timeout)
            if not ready:
                return "starting"
            return "started" if os.read(self.started, 1) == b"1" else "ended"
        finally:
            os.close(self.started)
            self.started = -1

    def send(self, task: dict[str, Any]) -> subprocess.Popen[str]:
        """Give the sandbox its task; the process then runs it (``watch_process``)."""
        try:
            os.write(self.tasks, json.dumps(task).encode())
        except OSError as exc:
            # It ended meanwhile (killed from outside): the task fails on its exit code.
            log.warning("prestarted_sandbox_gone", error=str(exc))
        finally:
            os.close(self.tasks)
            self.tasks = -1
        return self.process

    def discard(self) -> None:
        """End an unused sandbox: a closed pipe ends its launcher, else it is killed."""
        for fd in (self.tasks, self.started):
            if fd != -1:
                os.close(fd)
        self.tasks = self.started = -1
        try:
            self.process.wait(_END_WAIT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        if self.slot.is_dir():
            # Empty unless the worker already made it a task's working directory.
            with contextlib.suppress(OSError):
                self.slot.rmdir()


class PrestartPool:
    """Keeps one bwrap sandbox started ahead for a worker's next script task.

    A thread of the pool starts one at once, and the next each time a task
    takes the waiting one. ``close`` ends the waiting sandbox (the worker's stop).
    """

    def __init__(self, sandbox: Sandbox) -> None:
        """A pool for ``sandbox``'s policy (its bwrap mode); its first sandbox starts now."""
        self._sandbox = sandbox
        self._wanted = threading.Condition()
        self._ready: Prestarted | None = None
        # A start is due or under way (the first one at once).
        self._pending = True
        self._closed = False
        self._slots = sandbox.work_root_dir() / ".prestart"
        # Every sandbox is started from this one thread: bwrap's --die-with-parent
        # follows the thread that started it, and a task's own thread (a Parallel
        # branch's) may end before the sandbox it started is used.
        self._starter = threading.Thread(
            target=self._start_when_wanted, name="sandbox-prestart", daemon=True
        )
        self._starter.start()

    @property
    def waiting(self) -> Prestarted | None:
        """The sandbox started for the next task, if there is one."""
        return self._ready

    @property
    def closed(self) -> bool:
        """Whether the pool has stopped starting sandboxes (closed, or turned off)."""
        return self._closed

    def claim(self, working_dir: Path) -> Prestarted | None:
        """A started sandbox whose slot is now ``working_dir``, or None (start one cold).

        Only a new, empty working directory can be replaced by the slot (a
        ``WorkingDirectory`` task's shared directory cannot): the sandbox then
        waits for the next task. Once one is taken, the next starts; a task
        that comes meanwhile waits for that start (a fork and exec, not the
        sandbox's whole start) rather than start one of its own.
        """
        with self._wanted:
            self._wanted.wait_for(
                lambda: self._ready is not None or self._closed or not self._pending,
                timeout=_START_WAIT,
            )
            ready, self._ready = self._ready, None
            if ready is not None:
                self._pending = True
                self._wanted.notify_all()
        if ready is None:
            return None
        if not _is_empty(working_dir):
            self._keep(ready)
            return None
        # Not before it has started: bwrap binds the slot by its name.
        state = ready.wait_started(_START_WAIT)
        if state != "started":
            self._not_started(ready, ended=state == "ended")
            return None
        # Not one that has ended since (killed from outside).
        if ready.process.poll() is None and _adopt(ready, working_dir):
            return ready
        ready.discard()
        return None

    def close(self) -> None:
        """End the waiting sandbox and the thread that starts them; none starts after."""
        self._turn_off()
        self._starter.join()

    def _not_started(self, ready: Prestarted, *, ended: bool) -> None:
        """A sandbox that ended before its launcher ran turns the pool off, with bwrap's reason.

        The next would fail the same way; each task then starts its own, which
        fails with the reason in the task's log. One still starting after
        ``_START_WAIT`` (a loaded machine) is only replaced.
        """
        reason = ready.process.stderr.read() if ended and ready.process.stderr else ""
        ready.discard()
        if ended:
            log.warning("sandbox_prestart_off", reason=reason.strip()[-500:])
            self._turn_off()

    def _turn_off(self) -> None:
        with self._wanted:
            self._closed = True
            ready, self._ready = self._ready, None
            self._wanted.notify_all()
        if ready is not None:
            ready.discard()

    def _keep(self, ready: Prestarted) -> None:
        """Put back a sandbox a task could not take, for the next task."""
        with self._wanted:
            if self._ready is None and not self._closed:
                self._ready = ready
                self._pending = False  # a start not yet begun is not needed now
                self._wanted.notify_all()
                return
        ready.discard()

    def _start_when_wanted(self) -> None:
        """Start a sandbox whenever none waits, until the pool is closed.

        One that cannot be started (a refused policy, no room for its slot)
        turns the pool off: each task then starts its own, and fails with the
        reason if that fails too.
        """
        while True:
            with self._wanted:
                self._wanted.wait_for(lambda: self._closed or self._pending)
                if self._closed:
                    return
            try:
                started = self._start()
            except (OSError, SandboxError) as exc:
                log.warning("sandbox_prestart_off", reason=str(exc))
                self._turn_off()
                return
            with self._wanted:
                kept = not self._closed and self._ready is None
                if kept:
                    self._ready = started
                self._pending = False
                self._wanted.notify_all()
            if not kept:
                started.discard()

    def _start(self) -> Prestarted:
        slot = self._slots / uuid.uuid4().hex
        slot.mkdir(parents=True)
        self._sandbox.prepare(slot, "bwrap")
        tasks_in, tasks = os.pipe()
        started, started_out = os.pipe()
        theirs = (tasks_in, started_out)
        try:
            launch = self._sandbox.prestarted(slot, theirs, _LAUNCHER_SOURCE)
            process = start_process(launch.argv, cwd=slot, env=launch.env, pass_fds=theirs)
        except BaseException:
            os.close(tasks)
            os.close(started)
            slot.rmdir()
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        return Prestarted(process, slot, tasks, started)


def _is_empty(directory: Path) -> bool:
    try:
        return not any(directory.iterdir())
    except OSError:
        return False


def _adopt(ready: Prestarted, working_dir: Path) -> bool:
    """Make the (empty) ``working_dir`` the slot; the sandbox sees it through a link."""
    try:
        working_dir.rmdir()
        # The sandbox's bind mount follows the directory through the rename.
        ready.slot.rename(working_dir)
    except OSError as exc:
        log.warning("prestarted_sandbox_unused", reason=str(exc))
        working_dir.mkdir(exist_ok=True)
        return False
    ready.slot = working_dir
    return True
