"""Background loops outlive database errors; the scheduler fires each time exactly once."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session, col, select
from structlog.testing import capture_logs

from controlplane.domain.fields import State
from controlplane.errors import StoreError
from controlplane.metrics import REGISTRY
from controlplane.services.flows import Provenance, get_flow, put_flow
from controlplane.services.gitops.poller import Poller
from controlplane.services.gitops.sources import SourceInput, put_source
from controlplane.services.loop import BackgroundLoop, LoopRegistry
from controlplane.services.scheduler import Scheduler, due_times
from controlplane.services.secrets import load_keyring
from controlplane.services.watch import DirectoryWatcher
from controlplane.services.worker.worker import Worker
from controlplane.store.tables import ExecutionRow, PlanRow, TriggerFireRow
from tests.services.test_gitops import BACKUP, commit, git
from tests.services.test_scheduler import schedule

YEARLY = """\
id: yearly
namespace: demo
tasks:
  - {id: a, type: Log, message: "fired for {{ trigger.date }}"}
triggers:
  - id: newyear
    type: Schedule
    cron: "0 0 1 1 *"
"""

HOURLY_FAILING = """\
id: hourly
namespace: demo
tasks:
  - {id: boom, type: Fail}
triggers:
  - id: hourly
    type: Schedule
    cron: "0 * * * *"
    stopAfter: [FAILED]
"""


def wait_until(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after a generous deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    pytest.fail(f"{what}: not reached within {timeout} s")


def rename_table(engine: Engine, old: str, new: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


@contextmanager
def table_missing(engine: Engine, table: str) -> Iterator[Callable[[], None]]:
    """Rename ``table`` away; yields a function that puts it back (also done on exit)."""
    away = f"{table}_away"
    rename_table(engine, table, away)
    restored = False

    def restore() -> None:
        nonlocal restored
        if not restored:
            rename_table(engine, away, table)
            restored = True

    try:
        yield restore
    finally:
        restore()


def events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [line for line in logs if line["event"] == name]


def fired_times(engine: Engine) -> list[datetime]:
    with Session(engine) as session:
        rows = session.exec(select(TriggerFireRow.scheduled_at)).all()
    return sorted(r if r.tzinfo else r.replace(tzinfo=UTC) for r in rows)


def execution_count(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(ExecutionRow.id)).all())


def live_since(engine: Engine, flow_id: str, moved: timedelta | None = None) -> datetime:
    """When the flow's live revision went live, after moving that moment back by ``moved``."""
    revision = get_flow(engine, "demo", flow_id).revision
    if moved is not None:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE flow_revisions SET created_at = :at WHERE pk = :pk"),
                {"at": revision.created_at - moved, "pk": revision.pk},
            )
        revision = get_flow(engine, "demo", flow_id).revision
    created = revision.created_at
    return created if created.tzinfo else created.replace(tzinfo=UTC)


# --- the loop helper ---------------------------------------------------------


def test_backoff_doubles_while_ticks_fail_is_capped_and_resets_on_success() -> None:
    failures: list[Exception | None] = [ValueError("one"), ValueError("two"), None]
    outcomes = iter(failures + [OSError("down")] * 10)

    def tick() -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    loop = BackgroundLoop(f"unit-{uuid.uuid4().hex[:6]}", 1.0, tick, max_backoff=8.0)
    assert loop.delay == 1.0
    assert not loop.run_once()
    assert loop.delay == 2.0
    assert not loop.run_once()
    assert loop.delay == 4.0
    assert loop.run_once()
    assert (loop.delay, loop.failures) == (1.0, 0)
    assert loop.last_success is not None
    for _ in range(5):
        loop.run_once()
    assert loop.delay == 8.0  # capped


def test_a_raw_database_error_keeps_the_loop_alive_until_it_recovers(tmp_path: Path) -> None:
    name = f"probe-{uuid.uuid4().hex[:6]}"
    folder = tmp_path / "not-yet"
    # SQLite cannot open a file in a missing folder: a raw sqlalchemy OperationalError.
    database = create_engine(f"sqlite:///{folder / 'probe.db'}")

    def tick() -> None:
        with database.connect() as connection:
            connection.execute(text("SELECT 1"))

    loop = BackgroundLoop(name, 0.01, tick, max_backoff=0.1)
    with capture_logs() as logs:
        loop.start()
        try:
            wait_until(lambda: loop.failures >= 3, "three failed ticks")
            assert loop.is_alive()
            assert loop.last_success is None
            assert loop.delay > loop.interval  # backing off
            folder.mkdir()
            wait_until(lambda: loop.last_success is not None, "a successful tick")
            assert loop.is_alive()
        finally:
            loop.stop()
            database.dispose()
    assert not loop.is_alive()
    failed = events(logs, "loop_tick_failed")
    assert len(failed) >= 3
    assert failed[0]["loop"] == name
    assert "OperationalError" in failed[0]["error"]
    assert events(logs, "loop_recovered")[0]["loop"] == name
    assert REGISTRY.get_sample_value("flowplane_loop_failures_total", {"loop": name}) == len(failed)
    assert REGISTRY.get_sample_value(
        "flowplane_loop_last_success_timestamp_seconds", {"loop": name}
    ) == pytest.approx(loop.last_success)


def test_the_registry_names_dead_and_stale_loops() -> None:
    registry = LoopRegistry()
    loop = registry.add(BackgroundLoop("ticking", 0.01, lambda: None, max_age=5.0))
    registry.watch("thread", lambda: True, time.time, max_age=5.0)
    registry.watch("no-progress-check", lambda: True, None, max_age=5.0)
    assert registry.problems() == {"ticking": "dead"}  # not started
    loop.start()
    try:
        wait_until(lambda: loop.last_success is not None, "a tick")
        assert registry.problems() == {}
        later = time.time() + 60
        assert registry.problems(now=later) == {"ticking": "stale", "thread": "stale"}
    finally:
        loop.stop()
    assert registry.problems() == {"ticking": "dead"}


# --- the scheduler -------------------------------------------------------------


def test_scheduler_survives_a_database_error_and_fires_each_missed_time_once(
    engine: Engine,
) -> None:
    put_flow(engine, "demo", "yearly", YEARLY, Provenance())
    since = live_since(engine, "yearly", moved=timedelta(days=3 * 366))
    scheduler = Scheduler(engine, interval=0.02)
    with capture_logs() as logs, table_missing(engine, "trigger_fires") as restore:
        scheduler.start()
        try:
            wait_until(lambda: events(logs, "schedule_fire_failed"), "a failed fire")
            assert scheduler.loop.is_alive()
            restore()
            expected = due_times(schedule(YEARLY), since, datetime.now(UTC))
            wait_until(lambda: fired_times(engine) == expected, "the missed times fired")
            assert scheduler.loop.is_alive()
        finally:
            scheduler.stop()
    assert len(expected) >= 3
    assert fired_times(engine) == expected
    assert execution_count(engine) == len(expected)  # exactly once each
    assert "trigger_fires" in events(logs, "schedule_fire_failed")[0]["error"]


def test_a_store_error_is_logged_and_retried_after_backoff_not_taken_as_fired(
    engine: Engine,
) -> None:
    put_flow(engine, "demo", "yearly", YEARLY, Provenance())
    since = live_since(engine, "yearly", moved=timedelta(days=3 * 366))
    now = datetime.now(UTC)
    scheduler = Scheduler(engine)
    with capture_logs() as logs, table_missing(engine, "executions"):
        assert scheduler.tick(now) == 0
    assert fired_times(engine) == []  # nothing recorded as fired
    failed = events(logs, "schedule_fire_failed")
    assert [(f["flow"], f["trigger"]) for f in failed] == [("demo/yearly", "newyear")]
    assert scheduler.tick(now) == 0  # backing off: not retried at once
    retry = now + timedelta(seconds=failed[0]["retry_in"])
    expected = due_times(schedule(YEARLY), since, retry)
    assert scheduler.tick(retry) == len(expected) >= 3
    assert fired_times(engine) == expected


def test_a_unique_key_violation_means_already_fired(engine: Engine) -> None:
    put_flow(engine, "demo", "yearly", YEARLY, Provenance())
    since = live_since(engine, "yearly", moved=timedelta(days=400))
    moment = due_times(schedule(YEARLY), since, datetime.now(UTC))[0]
    revision = get_flow(engine, "demo", "yearly").revision
    first, second = Scheduler(engine), Scheduler(engine)
    assert first.fire(revision, schedule(YEARLY), moment) == 1
    with capture_logs() as logs:
        assert second.fire(revision, schedule(YEARLY), moment) == 0  # no error raised
    assert events(logs, "schedule_fire_failed") == []
    assert execution_count(engine) == 1
    with table_missing(engine, "executions"), pytest.raises(StoreError):
        second.fire(revision, schedule(YEARLY), moment + timedelta(days=365))


def test_late_maximum_delay_skips_times_that_are_too_late(engine: Engine) -> None:
    source = YEARLY.replace('"0 0 1 1 *"', '"0 * * * *"') + "    lateMaximumDelay: PT90M\n"
    put_flow(engine, "demo", "yearly", source, Provenance())
    since = live_since(engine, "yearly")
    now = since + timedelta(hours=5)
    due = due_times(schedule(source), since, now)
    on_time = [t for t in due if t >= now - timedelta(minutes=90)]
    assert len(due) > len(on_time) >= 1
    scheduler = Scheduler(engine)
    with capture_logs() as logs:
        assert scheduler.tick(now) == len(on_time)
        assert scheduler.tick(now) == 0
    assert fired_times(engine) == on_time
    skipped = events(logs, "schedule_skipped_late")
    assert len(skipped) == 1  # logged once, not on every tick
    assert skipped[0]["skipped"] == len(due) - len(on_time)


def test_stop_after_disables_the_trigger_once_a_run_failed(engine: Engine, tmp_path: Path) -> None:
    put_flow(engine, "demo", "hourly", HOURLY_FAILING, Provenance())
    since = live_since(engine, "hourly")
    scheduler = Scheduler(engine)
    first = due_times(schedule(HOURLY_FAILING), since, since + timedelta(hours=1))[0]
    first += timedelta(minutes=1)
    assert scheduler.tick(first) == 1
    worker = Worker(engine=engine, data_dir=tmp_path)
    assert worker.run_once()
    with Session(engine) as session:
        assert [e.state for e in session.exec(select(ExecutionRow)).all()] == [State.FAILED]
    with capture_logs() as logs:
        assert scheduler.tick(first + timedelta(hours=3)) == 0
        assert Scheduler(engine).tick(first + timedelta(hours=3)) == 0  # durable, not in memory
    assert [line["state"] for line in events(logs, "schedule_stopped")] == ["FAILED", "FAILED"]
    assert len(fired_times(engine)) == 1

    # A new revision of the flow re-arms the trigger.
    put_flow(engine, "demo", "hourly", HOURLY_FAILING.replace("boom", "boom2"), Provenance())
    assert scheduler.tick(first + timedelta(hours=3)) == 3


# --- the Git poller and the directory watcher --------------------------------------


def thread_alive(name: str) -> bool:
    return any(t.name == name and t.is_alive() for t in threading.enumerate())


def test_poller_survives_a_database_error(engine: Engine, tmp_path: Path) -> None:
    repo = tmp_path / "flows-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, {"flows/platform.ops/backup.yaml": BACKUP}, "add")
    put_source(
        engine,
        "flows",
        SourceInput(url=f"file://{repo}", poll_interval_seconds=60),
        actor="test",
        keyring=load_keyring(tmp_path),
    )
    poller = Poller(engine, tmp_path / "git", tick_seconds=0.02)
    with capture_logs() as logs, table_missing(engine, "git_sources") as restore:
        poller.start()
        try:
            wait_until(
                lambda: events(logs, "loop_tick_failed") or not thread_alive("git-poller"),
                "a failed poll",
            )
            restore()
            wait_until(lambda: plan_statuses(engine) == ["applied"], "a poll after recovery")
            assert thread_alive("git-poller")
        finally:
            poller.stop()
    failed = events(logs, "loop_tick_failed")[0]
    assert failed["loop"] == "git-poller"
    assert "git_sources" in failed["error"]


def plan_statuses(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [p.status for p in session.exec(select(PlanRow).order_by(col(PlanRow.created_at)))]


def test_watcher_survives_a_database_error_and_applies_the_change_after(
    engine: Engine, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    (workdir / "flows" / "platform.ops").mkdir(parents=True)
    flow_file = workdir / "flows" / "platform.ops" / "backup.yaml"
    flow_file.write_text(BACKUP)
    watcher = DirectoryWatcher(engine, workdir, tmp_path / "data" / "git", debounce_ms=50)
    with capture_logs() as logs:
        assert watcher.start().status == "applied"
        try:
            with table_missing(engine, "plans"):
                flow_file.write_text(BACKUP.replace("backing up", "edited"))
                wait_until(
                    lambda: events(logs, "loop_tick_failed") or not thread_alive("dir-watcher"),
                    "a failed sync",
                )
            # No further change: the failed sync itself is retried.
            wait_until(lambda: plan_statuses(engine) == ["applied", "applied"], "the retry")
            assert thread_alive("dir-watcher")
        finally:
            watcher.stop()
    assert get_flow(engine, "platform.ops", "backup").revision.revision == 2
    assert events(logs, "loop_tick_failed")[0]["loop"] == "dir-watcher"
