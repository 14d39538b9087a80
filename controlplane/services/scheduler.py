"""The scheduler: fires Schedule triggers exactly once per (flow, trigger, time).

Each tick lists live flows with Schedule triggers, computes the cron times due
since the last fire (or since the revision went live), and creates one
execution per due time in the same transaction that inserts the fire's unique
key. A second scheduler racing on the same time loses on that key and moves on.

Only that unique key means "already fired". Any other error leaves the time
unfired: the trigger stops at it (so no later time overtakes it), the error
is logged, and the trigger is tried again after a backoff while every other
trigger carries on. The tick runs on a ``BackgroundLoop``, which survives
errors that break a whole tick (the database is down).

``lateMaximumDelay`` skips, with a log line, a time older than ``now`` minus
the delay. ``conditions`` are tested at each due time, with ``trigger.date``
(and ``next``, ``previous``) in the trigger's time zone as in Kestra: a time
whose conditions fail, or cannot be evaluated, is skipped with a log line, and
the newest such time is kept in the namespace's key-value table under a
``schedule-skip:`` key (never a valid user key), so no scheduler evaluates it
again. ``stopAfter`` disables a trigger once one of its runs of the live
revision is in a listed state; the state is derived from ``trigger_fires``
joined to ``executions``, so it is durable, and a new revision re-arms it.
A trigger switched off at run time (``trigger_states``, the Toggle task) is
not evaluated; switched on again, it fires from that moment, not the times
it missed meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from controlplane.domain import expressions
from controlplane.domain.conditions import ConditionContext, Expression, first_failing
from controlplane.domain.durations import parse_duration
from controlplane.domain.triggers import Schedule
from controlplane.errors import EvaluationError, StoreError
from controlplane.logging import get_logger
from controlplane.services.executions import fire_schedule
from controlplane.services.loop import MAX_BACKOFF_SECONDS, BackgroundLoop
from controlplane.services.revisions import stored_spec
from controlplane.store import kv, trigger_states
from controlplane.store.db import as_utc, transaction
from controlplane.store.flows import FlowFilter, list_active
from controlplane.store.tables import ExecutionRow, FlowRevisionRow, TriggerFireRow, utcnow

log = get_logger(__name__)

# Catching up after downtime is bounded, so a years-old cron cannot flood the queue.
MAX_CATCH_UP = 1000

_TriggerKey = tuple[str, str, str]  # namespace, flow id, trigger id


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


def schedule_variables(trigger: Schedule, moment: datetime) -> dict[str, Any]:
    """What a Schedule's conditions see at ``moment``: Kestra's ``trigger`` (and ``schedule``).

    ``date``, ``next`` and ``previous`` are the cron times around ``moment``,
    in the trigger's time zone, so a date condition tests the local day.
    """
    local = moment.astimezone(ZoneInfo(trigger.timezone))
    following = croniter(trigger.cron, local, second_at_beginning=True).get_next(datetime)
    preceding = croniter(trigger.cron, local, second_at_beginning=True).get_prev(datetime)
    dates = {
        "date": local.isoformat(),
        "next": following.isoformat(),
        "previous": preceding.isoformat(),
    }
    return {"trigger": dates, "schedule": dates}


def late_limit(trigger: Schedule) -> timedelta | None:
    """The trigger's ``lateMaximumDelay``; None when unset (an expression is rendered first).

    Raises ``ValueError`` (``RenderError`` is one) when it is not a duration.
    """
    if trigger.lateMaximumDelay is None:
        return None
    return parse_duration(expressions.render(trigger.lateMaximumDelay, {}))


@dataclass
class _Backoff:
    failures: int
    retry_at: datetime


@dataclass
class Scheduler:
    """Fires Schedule triggers; several may run against one database."""

    engine: Engine
    interval: float = 1.0
    loop: BackgroundLoop = field(init=False)
    _backoff: dict[_TriggerKey, _Backoff] = field(default_factory=dict)
    # Times skipped as too late are not stored; this keeps the next tick from
    # computing (and logging) them again.
    _skipped_until: dict[_TriggerKey, datetime] = field(default_factory=dict)
    _reported: set[tuple[int | None, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.loop = BackgroundLoop("scheduler", self.interval, lambda: self.tick(utcnow()))

    def start(self) -> None:
        """Tick in a background thread."""
        self.loop.start()

    def stop(self) -> None:
        """Stop ticking."""
        self.loop.stop(10)

    def tick(self, now: datetime) -> int:
        """Fire every due time up to ``now``; return how many executions were created."""
        created = 0
        for revision, trigger in self._schedules():
            key = (revision.namespace, revision.flow_id, trigger.id)
            waiting = self._backoff.get(key)
            if waiting is not None and now < waiting.retry_at:
                continue
            try:
                created += self._fire_due(revision, trigger, now)
            except Exception as exc:  # noqa: BLE001 - one broken trigger must not stop the rest
                self._back_off(key, now, exc)
            else:
                self._backoff.pop(key, None)
        return created

    def _schedules(self) -> list[tuple[FlowRevisionRow, Schedule]]:
        with Session(self.engine) as session:
            rows, _ = list_active(session, FlowFilter(), offset=0, limit=100_000)
            # Switched off at run time (a trigger.Toggle task): not evaluated at all.
            off = trigger_states.disabled_keys(session)
        return [
            (revision, trigger)
            for _flow, revision in rows
            if "Schedule" in revision.source
            for trigger in stored_spec(revision.source).triggers or []
            if isinstance(trigger, Schedule)
            and not trigger.disabled
            and (revision.namespace, revision.flow_id, trigger.id) not in off
        ]

    def _fire_due(self, revision: FlowRevisionRow, trigger: Schedule, now: datetime) -> int:
        """Fire the trigger's due times in order; raise at the first that fails."""
        if self._stopped(revision, trigger):
            return 0
        key = (revision.namespace, revision.flow_id, trigger.id)
        after = self._last_fire(revision, trigger)
        skipped_until = self._skipped_until.get(key)
        if skipped_until is not None and skipped_until > after:
            after = skipped_until
        times = self._drop_late(key, trigger, due_times(trigger, after, now), now)
        fired = 0
        skipped: datetime | None = None
        for moment in times:
            if not self._conditions_hold(revision, trigger, moment):
                skipped = moment
                continue
            if skipped is not None:
                # Recorded before the next fire, so a failing fire never strands it.
                self._record_skip(revision, trigger, skipped)
                skipped = None
            fired += self.fire(revision, trigger, moment)
        if skipped is not None:
            self._record_skip(revision, trigger, skipped)
        return fired

    def _conditions_hold(
        self, revision: FlowRevisionRow, trigger: Schedule, moment: datetime
    ) -> bool:
        """Whether the trigger's conditions allow ``moment``; a refusal is logged.

        A condition that cannot be evaluated (a broken template) skips the time
        too, loudly: retrying could never succeed, and Kestra likewise gives
        up on that date (it records a FAILED execution for it).
        """
        conditions = list(trigger.conditions or [])
        if trigger.when is not None:
            # ``when`` is an Expression condition written as one property.
            conditions.append(Expression(type="Expression", expression=trigger.when, id="when"))
        if not conditions:
            return True
        flow = f"{revision.namespace}/{revision.flow_id}"
        variables = {
            **schedule_variables(trigger, moment),
            "flow": {
                "id": revision.flow_id,
                "namespace": revision.namespace,
                "revision": revision.revision,
            },
        }
        try:
            failing = first_failing(conditions, ConditionContext(variables))
        except EvaluationError as exc:
            log.warning(
                "schedule_condition_failed",
                flow=flow,
                trigger=trigger.id,
                date=moment.isoformat(),
                error=str(exc),
            )
            return False
        if failing is None:
            return True
        log.info(
            "schedule_skipped_by_condition",
            flow=flow,
            trigger=trigger.id,
            date=variables["trigger"]["date"],
            condition=(
                "when"
                if trigger.when is not None and failing == len(conditions) - 1
                else f"conditions[{failing}] ({conditions[failing].NAME})"
            ),
        )
        return False

    def _record_skip(self, revision: FlowRevisionRow, trigger: Schedule, moment: datetime) -> None:
        """Keep ``moment`` as the newest skipped time, so no scheduler tries it again."""
        key = _skip_key(revision.flow_id, trigger.id)
        with transaction(self.engine) as session:
            entry = kv.get_entry(session, revision.namespace, key)
            known = _skipped_at(entry.value if entry else None)
            if known is None or moment > known:
                kv.put_entry(session, revision.namespace, key, {"until": moment.isoformat()})

    def _drop_late(
        self, key: _TriggerKey, trigger: Schedule, times: list[datetime], now: datetime
    ) -> list[datetime]:
        try:
            limit = late_limit(trigger)
        except ValueError as exc:  # RenderError is a ValueError too
            # Firing late is safer than never firing: the limit is ignored, loudly.
            log.warning("schedule_late_delay_invalid", trigger=trigger.id, error=str(exc))
            return times
        if limit is None:
            return times
        late = [t for t in times if t < now - limit]
        if late:
            self._skipped_until[key] = late[-1]
            log.info(
                "schedule_skipped_late",
                flow=f"{key[0]}/{key[1]}",
                trigger=trigger.id,
                skipped=len(late),
                first=late[0].isoformat(),
                last=late[-1].isoformat(),
                late_maximum_delay=trigger.lateMaximumDelay,
            )
        return [t for t in times if t >= now - limit]

    def _stopped(self, revision: FlowRevisionRow, trigger: Schedule) -> bool:
        """Whether a run this trigger started for the live revision ended in a stopAfter state."""
        if not trigger.stopAfter:
            return False
        with Session(self.engine) as session:
            hit = session.exec(
                select(ExecutionRow.id, ExecutionRow.state)
                .join(TriggerFireRow, col(TriggerFireRow.execution_id) == col(ExecutionRow.id))
                .where(
                    col(TriggerFireRow.namespace) == revision.namespace,
                    col(TriggerFireRow.flow_id) == revision.flow_id,
                    col(TriggerFireRow.trigger_id) == trigger.id,
                    col(ExecutionRow.revision_pk) == revision.pk,
                    col(ExecutionRow.state).in_([state.value for state in trigger.stopAfter]),
                )
                .limit(1)
            ).first()
        if hit is None:
            return False
        if (revision.pk, trigger.id) not in self._reported:
            self._reported.add((revision.pk, trigger.id))
            log.info(
                "schedule_stopped",
                flow=f"{revision.namespace}/{revision.flow_id}",
                revision=revision.revision,
                trigger=trigger.id,
                execution=hit[0],
                state=hit[1],
            )
        return True

    def _last_fire(self, revision: FlowRevisionRow, trigger: Schedule) -> datetime:
        """The newest time fired or skipped by conditions, or when the revision went live."""
        with Session(self.engine) as session:
            last = session.exec(
                select(func.max(TriggerFireRow.scheduled_at)).where(
                    col(TriggerFireRow.namespace) == revision.namespace,
                    col(TriggerFireRow.flow_id) == revision.flow_id,
                    col(TriggerFireRow.trigger_id) == trigger.id,
                )
            ).one()
            entry = kv.get_entry(
                session, revision.namespace, _skip_key(revision.flow_id, trigger.id)
            )
            skipped = _skipped_at(entry.value if entry else None)
            # As Kestra since 1.2.22: times missed while switched off are not recovered.
            enabled = trigger_states.enabled_at(
                session, (revision.namespace, revision.flow_id, trigger.id)
            )
        marks = [
            as_utc(mark)
            for mark in (revision.created_at, last, skipped, enabled)
            if mark is not None
        ]
        return max(marks)

    def fire(self, revision: FlowRevisionRow, trigger: Schedule, moment: datetime) -> int:
        """Fire one time (1), or find it fired already (0); raise when it is neither."""
        try:
            execution = fire_schedule(self.engine, revision, trigger, moment)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError) and self._fired(revision, trigger, moment):
                return 0  # another scheduler (or a backfill) holds this time's key
            raise
        if execution is not None:
            return 1
        if self._fired(revision, trigger, moment):
            return 0  # another scheduler (or a backfill) fired this time first
        # fire_schedule answers None for "already fired"; the missing row says
        # the store failed instead, and the time must not be lost.
        raise StoreError(f"the fire at {moment.isoformat()} was not stored")

    def _fired(self, revision: FlowRevisionRow, trigger: Schedule, moment: datetime) -> bool:
        with Session(self.engine) as session:
            row = session.exec(
                select(TriggerFireRow.pk).where(
                    col(TriggerFireRow.namespace) == revision.namespace,
                    col(TriggerFireRow.flow_id) == revision.flow_id,
                    col(TriggerFireRow.trigger_id) == trigger.id,
                    col(TriggerFireRow.scheduled_at) == moment,
                )
            ).first()
        return row is not None

    def _back_off(self, key: _TriggerKey, now: datetime, exc: Exception) -> None:
        failures = self._backoff[key].failures + 1 if key in self._backoff else 1
        delay = min(MAX_BACKOFF_SECONDS, max(self.interval, 1.0) * 2 ** min(failures, 32))
        self._backoff[key] = _Backoff(failures, now + timedelta(seconds=delay))
        log.warning(
            "schedule_fire_failed",
            flow=f"{key[0]}/{key[1]}",
            trigger=key[2],
            error=f"{type(exc).__name__}: {exc}",
            failures=failures,
            retry_in=delay,
        )


def _skip_key(flow_id: str, trigger_id: str) -> str:
    return f"schedule-skip:{flow_id}:{trigger_id}"


def _skipped_at(value: Any) -> datetime | None:
    """The time a ``schedule-skip:`` entry holds; None for a missing or foreign value."""
    if not isinstance(value, dict) or not isinstance(value.get("until"), str):
        return None
    try:
        return as_utc(datetime.fromisoformat(value["until"]))
    except ValueError:
        return None
