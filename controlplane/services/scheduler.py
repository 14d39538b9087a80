"""The scheduler: fires Schedule triggers exactly once per (flow, trigger, time).

Each tick lists live flows with Schedule triggers, computes the cron times due
since the last fire (or since the revision went live), and creates one
execution per due time in the same transaction that inserts the fire's unique
key. A second scheduler racing on the same time loses on that key and moves on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from controlplane.domain.triggers import Schedule
from controlplane.errors import FlowplaneError
from controlplane.logging import get_logger
from controlplane.services.executions import fire_schedule
from controlplane.services.revisions import stored_spec
from controlplane.store.db import as_utc
from controlplane.store.flows import FlowFilter, list_active
from controlplane.store.tables import FlowRevisionRow, TriggerFireRow, utcnow

log = get_logger(__name__)

# Catching up after downtime is bounded, so a years-old cron cannot flood the queue.
MAX_CATCH_UP = 1000


def due_times(
    trigger: Schedule, after: datetime, now: datetime, *, limit: int = MAX_CATCH_UP
) -> list[datetime]:
    """Cron times in ``(after, now]``, in the trigger's time zone, as UTC datetimes.

    ``recoverMissedSchedules``: ALL (default) keeps every missed time, LAST only
    the newest, NONE only a time that is not older than one minute.
    """
    zone = ZoneInfo(trigger.timezone)
    iterator = croniter(trigger.cron, after.astimezone(zone), second_at_beginning=True)
    times: list[datetime] = []
    while len(times) < limit:
        moment = iterator.get_next(datetime)
        if moment > now:
            break
        times.append(moment.astimezone(after.tzinfo))
    policy = trigger.recoverMissedSchedules or "ALL"
    if policy == "LAST":
        return times[-1:]
    if policy == "NONE":
        return [t for t in times[-1:] if (now - t).total_seconds() <= 60]  # noqa: PLR2004
    return times


@dataclass
class Scheduler:
    """Fires Schedule triggers; several may run against one database."""

    engine: Engine
    interval: float = 1.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Tick in a background thread."""
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick(utcnow())
            except FlowplaneError as exc:
                log.warning("scheduler_tick_failed", error=str(exc))

    def tick(self, now: datetime) -> int:
        """Fire every due time up to ``now``; return how many executions were created."""
        created = 0
        with Session(self.engine) as session:
            rows, _ = list_active(session, FlowFilter(), offset=0, limit=100_000)
            schedules = [
                (revision, trigger)
                for _flow, revision in rows
                if "Schedule" in revision.source
                for trigger in stored_spec(revision.source).triggers or []
                if isinstance(trigger, Schedule) and not trigger.disabled
            ]
        for revision, trigger in schedules:
            for moment in due_times(trigger, self._last_fire(revision, trigger), now):
                created += self._fire(revision, trigger, moment)
        return created

    def _last_fire(self, revision: FlowRevisionRow, trigger: Schedule) -> datetime:
        with Session(self.engine) as session:
            last = session.exec(
                select(func.max(TriggerFireRow.scheduled_at)).where(
                    col(TriggerFireRow.namespace) == revision.namespace,
                    col(TriggerFireRow.flow_id) == revision.flow_id,
                    col(TriggerFireRow.trigger_id) == trigger.id,
                )
            ).one()
        start = as_utc(revision.created_at)
        return max(as_utc(last), start) if last is not None else start

    def _fire(self, revision: FlowRevisionRow, trigger: Schedule, moment: datetime) -> int:
        try:
            execution = fire_schedule(self.engine, revision, trigger, moment)
        except FlowplaneError as exc:
            log.warning("schedule_fire_failed", trigger=trigger.id, error=str(exc))
            return 0
        # None: another scheduler (or a backfill) fired this time first.
        return 0 if execution is None else 1
