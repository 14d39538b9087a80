"""Wake idle workers when work appears, instead of letting them wait out their poll.

A transaction that makes a run claimable (a new run, a resumed one, or a run
that ends and so may free a concurrency slot) calls ``wake_workers(session)``.

- **PostgreSQL**: that sends ``NOTIFY flowplane_work``, delivered at commit and
  never for a rolled-back transaction. One listener thread per process
  (``listen``) hears it and wakes that process's workers.
- **SQLite** is one process: the commit sets an in-process wakeup directly.

The poll stays as the fallback. A notification lost to a dropped connection
costs at most one poll interval, and parked runs (a Pause duration, a WaitFor
interval) are found by the poll when their time comes.
"""

from __future__ import annotations

import threading

import psycopg
from sqlalchemy import Engine, event, text
from sqlmodel import Session

from controlplane.logging import get_logger

log = get_logger(__name__)

CHANNEL = "flowplane_work"
_INFO_KEY = "flowplane_wake_workers"


class Wakeup:
    """A generation counter that idle workers wait on; ``fire`` wakes all of them.

    A worker reads ``generation`` before it looks for work and passes it to
    ``wait``: work queued between the look and the wait bumps the generation,
    so the wait returns at once instead of missing it.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        """How many times work was announced so far."""
        with self._changed:
            return self._generation

    def fire(self) -> None:
        """Announce work: every waiting worker wakes."""
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Wait until work is announced after ``seen``, or ``timeout`` seconds; True if woken."""
        with self._changed:
            return self._changed.wait_for(lambda: self._generation != seen, timeout)


_wakeups: dict[str, Wakeup] = {}
_listeners: dict[str, threading.Thread] = {}
_lock = threading.Lock()


def wakeup_for(engine: Engine) -> Wakeup:
    """The process-wide wakeup of the database ``engine`` points at."""
    key = engine.url.render_as_string(hide_password=False)
    with _lock:
        return _wakeups.setdefault(key, Wakeup())


def wake_workers(session: Session) -> None:
    """Wake the workers once this transaction commits (not if it rolls back)."""
    session.info[_INFO_KEY] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


@event.listens_for(Session, "after_commit")
def _fire_after_commit(session: Session) -> None:
    if session.info.pop(_INFO_KEY, False):
        wakeup_for(session.get_bind().engine).fire()


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_INFO_KEY, None)


def listen(engine: Engine) -> None:
    """On PostgreSQL, start this process's listener for other processes' notifications.

    Idempotent: one daemon thread per database, however many workers share it.
    Does nothing on SQLite, where every writer is in this process.
    """
    if engine.dialect.name != "postgresql":
        return
    key = engine.url.render_as_string(hide_password=False)
    with _lock:
        if key in _listeners and _listeners[key].is_alive():
            return
        thread = threading.Thread(
            target=_listen_forever, args=(engine,), name="flowplane-listen", daemon=True
        )
        _listeners[key] = thread
    thread.start()


def _listen_forever(engine: Engine) -> None:
    wakeup = wakeup_for(engine)
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    backoff = 0.5
    while True:
        try:
            # A connection of its own, not the pool's: it stays in LISTEN, in autocommit.
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute(f"LISTEN {CHANNEL}")
                backoff = 0.5
                # Wake once after (re)connecting: notifications sent while the
                # connection was down are gone, so look for work anyway.
                wakeup.fire()
                while True:
                    for _notice in connection.notifies(timeout=30.0):
                        wakeup.fire()
                    # Quiet for 30 s: a dead connection raises here, and is replaced.
                    connection.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - the listener must outlive a database restart
            log.warning("work_listener_reconnecting", retry_in=backoff)
        threading.Event().wait(backoff)
        backoff = min(backoff * 2, 30.0)
