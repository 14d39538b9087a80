"""The writes of one run, committed per step instead of one transaction per row.

A task run's start, its log lines and its end used to be a transaction each:
a three-task flow cost about ten commits, and on PostgreSQL each one is a
round trip and a WAL flush. The executor now queues them here and commits
them together:

- when a task run ends (``save`` of an ended row): its start, its logs and its
  end are one transaction, so the next task starts after this one is durable;
- ``max_delay`` after the oldest queued write, from a flusher thread, so a
  long task's RUNNING row and its log lines still show up live;
- when the run stops, pauses or ends (the executor's ``close``).

A worker killed mid-batch loses only writes that were never committed; the
run is taken over and replays from the last committed task run, so nothing is
duplicated (``tests/services/test_write_batches.py``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Engine

from controlplane.logging import get_logger
from controlplane.store.db import transaction
from controlplane.store.tables import LogRow, TaskRunRow

log = get_logger(__name__)

_COLUMNS = tuple(column.name for column in TaskRunRow.__table__.columns)  # type: ignore[attr-defined]
# A burst of log lines is committed in chunks of at most this many rows.
MAX_PENDING = 500


class WriteBatch:
    """Task-run rows and log lines of one execution, waiting for their commit."""

    def __init__(self, engine: Engine, max_delay: float = 0.2) -> None:
        self._engine = engine
        self._max_delay = max_delay
        # Guards the queues only; held for no database call, so logging never waits on one.
        self._lock = threading.Lock()
        # One flush at a time, so commits keep the order in which rows were queued.
        self._flushing = threading.Lock()
        # Latest snapshot per task run id; insertion order keeps parents first.
        self._runs: dict[str, dict[str, Any]] = {}
        self._logs: list[LogRow] = []
        self._oldest: float | None = None
        self._closed = threading.Event()
        self._flusher = threading.Thread(target=self._flush_late, name="write-batch", daemon=True)
        self._flusher.start()

    def save(self, row: TaskRunRow) -> None:
        """Queue ``row`` as it is now; an ended row commits with everything before it.

        The commit of an ended row raises when the database fails: the task's
        end must be durable before the next task starts.
        """
        # A snapshot: the executor keeps changing the object after this call.
        snapshot = {name: getattr(row, name) for name in _COLUMNS}
        with self._lock:
            self._runs[row.id] = snapshot
            self._touch()
        if row.ended_at is not None:
            self.flush()

    def log(self, line: LogRow) -> None:
        """Queue one log line; never raises (a failed commit keeps it queued)."""
        with self._lock:
            self._logs.append(line)
            self._touch()
            full = len(self._logs) >= MAX_PENDING
        if full:
            try:
                self.flush()
            except Exception:  # the lines stay queued for the next flush
                log.warning("write_batch_flush_failed", exc_info=True)

    def flush(self) -> None:
        """Commit everything queued, in one transaction; on failure it stays queued."""
        with self._flushing:
            with self._lock:
                if not self._runs and not self._logs:
                    return
                runs, logs = self._runs, self._logs
                self._runs, self._logs, self._oldest = {}, [], None
            try:
                with transaction(self._engine) as session:
                    for values in runs.values():
                        session.merge(TaskRunRow(**values))
                    session.add_all(logs)
            except BaseException:
                with self._lock:
                    # Put them back in front of what was queued meanwhile; a newer
                    # snapshot of the same task run wins.
                    self._runs = {**runs, **self._runs}
                    self._logs = [*logs, *self._logs]
                    self._oldest = self._oldest or time.monotonic()
                raise

    def close(self) -> None:
        """Commit what is left and stop the flusher thread."""
        self._closed.set()
        self._flusher.join()
        self.flush()

    def _touch(self) -> None:
        if self._oldest is None:
            self._oldest = time.monotonic()

    def _flush_late(self) -> None:
        """Commit writes that waited ``max_delay`` (a long task's start and logs)."""
        while not self._closed.wait(self._max_delay / 2):
            with self._lock:
                due = self._oldest is not None and (
                    time.monotonic() - self._oldest >= self._max_delay
                )
            if due:
                try:
                    self.flush()
                except Exception:  # the writes stay queued for the next try
                    log.warning("write_batch_flush_failed", exc_info=True)
