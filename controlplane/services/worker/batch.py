"""The writes of one run, committed per step instead of one transaction per row.

A task run's start, its log lines and its end used to be a transaction each:
a three-task flow cost about ten commits, and on PostgreSQL each one is a
round trip and a WAL flush. The executor now queues them here and commits
them together:

- when a task run with side effects ends (``save`` of an ended row): its
  start, its logs and its end are one transaction, so the next task starts
  after this one is durable;
- before a task with side effects starts, when task runs that ended are still
  queued (``commit_ended``): what it acts on is durable first;
- ``max_delay`` after the oldest queued write, from a flusher thread, so a
  long task's RUNNING row and its log lines still show up live;
- when the run stops, pauses or ends: the worker writes what is left in the
  same transaction as the run's new state (``write_into``).

A task without side effects (``SIDE_EFFECTS = False``: Log, Return, …) does
not commit at its end. A crash before its end is committed replays it, which
changes nothing outside the run.

Every commit holds a prefix of the queued writes, in order, so a worker killed
mid-batch loses only writes that were never committed; the run is taken over
and replays from the last committed task run, so nothing is duplicated
(``tests/services/test_write_batches.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, insert, update
from sqlmodel import Session

from controlplane.logging import get_logger
from controlplane.store.db import transaction
from controlplane.store.tables import LogRow, TaskRunRow

log = get_logger(__name__)

_TABLE = TaskRunRow.__table__  # type: ignore[attr-defined]
_COLUMNS = tuple(column.name for column in _TABLE.columns)
# A burst of log lines is committed in chunks of at most this many rows.
MAX_PENDING = 500


class WriteBatch:
    """Task-run rows and log lines of one execution, waiting for their commit."""

    def __init__(self, engine: Engine, max_delay: float = 0.2) -> None:
        """Queue one run's writes; ``start`` starts the late commits."""
        self._engine = engine
        self._max_delay = max_delay
        # Guards the queues only; held for no database call, so logging never waits on one.
        self._lock = threading.Lock()
        # One flush at a time, so commits keep the order in which rows were queued.
        self._flushing = threading.Lock()
        # Latest snapshot per task run id; insertion order keeps parents first.
        self._runs: dict[str, dict[str, Any]] = {}
        self._logs: list[LogRow] = []
        # Task runs the database holds: an update, not an insert (no read first, as a merge does).
        self._stored: set[str] = set()
        self._oldest: float | None = None
        self._closed = threading.Event()
        self._flusher = threading.Thread(target=self._flush_late, name="write-batch", daemon=True)

    def start(self, stored: Iterable[str] = ()) -> None:
        """Start the flusher; ``stored``: ids of the run's task runs the database holds."""
        self._stored.update(stored)
        self._flusher.start()

    def save(self, row: TaskRunRow, *, commit: bool = True) -> None:
        """Queue ``row`` as it is now; an ended row commits with everything before it.

        ``commit=False`` leaves an ended row queued (a task without side
        effects). The commit of an ended row raises when the database fails:
        the task's end must be durable before the next task starts.
        """
        # A snapshot: the executor keeps changing the object after this call.
        snapshot = {name: getattr(row, name) for name in _COLUMNS}
        with self._lock:
            self._runs[row.id] = snapshot
            self._touch()
        if commit and row.ended_at is not None:
            self.flush()

    def commit_ended(self) -> None:
        """Commit what is queued if a task run that ended is among it (before a task acts)."""
        with self._lock:
            pending = any(values["ended_at"] is not None for values in self._runs.values())
        if pending:
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
            runs, logs = self._take()
            if not runs and not logs:
                return
            try:
                with transaction(self._engine) as session:
                    self._write(session, runs, logs)
            except BaseException:
                self._put_back(runs, logs)
                raise
            self._stored.update(runs)

    def write_into(self, session: Session) -> None:
        """Stop the flusher and add everything queued to ``session``'s transaction.

        The caller commits it (the run's end and its last task runs are one
        transaction); the queue is empty afterwards whatever the caller does.
        """
        self.stop()
        with self._flushing:
            runs, logs = self._take()
            self._write(session, runs, logs)
            self._stored.update(runs)

    def stop(self) -> None:
        """Stop the flusher thread; what is queued stays queued."""
        self._closed.set()
        started = self._flusher.ident is not None
        if started and self._flusher is not threading.current_thread():
            self._flusher.join()

    def close(self) -> None:
        """Commit what is left and stop the flusher thread."""
        self.stop()
        self.flush()

    def _take(self) -> tuple[dict[str, dict[str, Any]], list[LogRow]]:
        with self._lock:
            runs, logs = self._runs, self._logs
            self._runs, self._logs, self._oldest = {}, [], None
        return runs, logs

    def _put_back(self, runs: dict[str, dict[str, Any]], logs: list[LogRow]) -> None:
        with self._lock:
            # In front of what was queued meanwhile; a newer snapshot of the same task run wins.
            self._runs = {**runs, **self._runs}
            self._logs = [*logs, *self._logs]
            self._oldest = self._oldest or time.monotonic()

    def _write(self, session: Session, runs: dict[str, dict[str, Any]], logs: list[LogRow]) -> None:
        new = [values for run_id, values in runs.items() if run_id not in self._stored]
        if new:  # one multi-row insert, parents first (insertion order)
            session.execute(insert(_TABLE), new)
        for run_id, values in runs.items():
            if run_id in self._stored:
                session.execute(update(_TABLE).where(_TABLE.c.id == run_id).values(values))
        session.add_all(logs)

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
