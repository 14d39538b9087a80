"""SQLite: a writer takes the write lock at BEGIN, a reader never takes it (store/db.py).

Reads used to begin IMMEDIATE too, so every API read and every check of the
worker queued behind the writers; under a webhook load the worker's commits
starved. Only ``transaction`` writes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine, text
from sqlmodel import Session

from controlplane.store.db import create_engine, migrate, transaction


def _lock_is_free(path: Path) -> bool:
    """Whether another connection could start writing right now (no waiting)."""
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        return False
    else:
        probe.execute("ROLLBACK")
        return True
    finally:
        probe.close()


def _sqlite(tmp_path: Path) -> tuple[Engine, Path]:
    path = tmp_path / "locks.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate(engine)
    return engine, path


def test_a_read_session_leaves_the_write_lock_free(tmp_path: Path) -> None:
    engine, path = _sqlite(tmp_path)
    with Session(engine) as session:
        session.exec(text("SELECT count(*) FROM executions")).one()
        assert session.in_transaction()
        assert _lock_is_free(path)
    engine.dispose()


def test_a_transaction_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    engine, path = _sqlite(tmp_path)
    with transaction(engine) as session:
        # A read first: the lock is already held, so no other writer can slip in
        # between this read and the write that depends on it.
        session.exec(text("SELECT count(*) FROM executions")).one()
        assert not _lock_is_free(path)
    assert _lock_is_free(path)
    engine.dispose()


def test_a_reader_is_not_blocked_by_a_writer(tmp_path: Path) -> None:
    engine, _path = _sqlite(tmp_path)
    with transaction(engine) as writing:
        writing.exec(
            text(
                "INSERT INTO kv_entries (namespace, key, value, created_at, updated_at) "
                "VALUES ('n', 'k', '1', '2026-11-28', '2026-11-28')"
            )
        )
        # In WAL mode the reader sees the last committed snapshot, at once.
        with Session(engine) as reading:
            assert reading.exec(text("SELECT count(*) FROM kv_entries")).one()[0] == 0
    with Session(engine) as reading:
        assert reading.exec(text("SELECT count(*) FROM kv_entries")).one()[0] == 1
    engine.dispose()
