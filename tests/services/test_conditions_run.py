"""Conditions run where Kestra runs them: a Schedule fires or skips, a Flow trigger fires or not.

Schedule tests move the revision's go-live time back to a chosen date and call
``Scheduler.tick`` with a chosen ``now``, then read which cron times fired.
Flow-trigger tests run the upstream flow with a real worker (which fires the
listeners synchronously when the run ends) and count the listener's runs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text
from sqlmodel import Session, col, select
from structlog.testing import capture_logs

from controlplane.services.executions import create_execution
from controlplane.services.flows import Provenance, get_flow, put_flow
from controlplane.services.scheduler import Scheduler
from controlplane.services.worker.worker import Worker
from controlplane.store.tables import ExecutionRow, TriggerFireRow

# --- Schedule triggers -------------------------------------------------------------


def schedule_flow(
    conditions: str, *, cron: str = "0 11 * * *", timezone: str | None = None, trigger: str = "s"
) -> str:
    """A flow with one Schedule trigger carrying ``conditions`` (YAML list items)."""
    zone = f"    timezone: {timezone}\n" if timezone else ""
    return (
        "id: sched\nnamespace: demo\ntasks:\n  - {id: a, type: Log, message: hi}\ntriggers:\n"
        + schedule_trigger(conditions, cron=cron, trigger=trigger)
        + zone
    )


def schedule_trigger(conditions: str, *, cron: str = "0 11 * * *", trigger: str = "s") -> str:
    """One Schedule trigger item of a flow's ``triggers``."""
    indented = "".join(f"      {line}\n" for line in conditions.strip("\n").splitlines())
    return f"  - id: {trigger}\n    type: Schedule\n    cron: '{cron}'\n    conditions:\n{indented}"


def go_live(engine: Engine, source: str, since: datetime) -> None:
    """Put the flow live and pretend it went live at ``since``."""
    put_flow(engine, "demo", "sched", source, Provenance())
    revision = get_flow(engine, "demo", "sched").revision
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE flow_revisions SET created_at = :at WHERE pk = :pk"),
            {"at": since, "pk": revision.pk},
        )


def fired(engine: Engine, trigger: str = "s", zone: str = "UTC") -> list[datetime]:
    """The times the trigger fired, in ``zone``, oldest first."""
    with Session(engine) as session:
        rows = session.exec(
            select(TriggerFireRow.scheduled_at).where(col(TriggerFireRow.trigger_id) == trigger)
        ).all()
    aware = (r if r.tzinfo else r.replace(tzinfo=UTC) for r in rows)
    return sorted(moment.astimezone(ZoneInfo(zone)) for moment in aware)


def fired_days(engine: Engine, trigger: str = "s", zone: str = "UTC") -> list[date]:
    """The local dates the trigger fired on."""
    return [moment.date() for moment in fired(engine, trigger, zone)]


def run_schedule(engine: Engine, source: str, start: date, end: date) -> list[date]:
    """Go live on ``start`` at midnight UTC, tick at ``end`` midnight; the days fired."""
    go_live(engine, source, datetime(start.year, start.month, start.day, tzinfo=UTC))
    Scheduler(engine).tick(datetime(end.year, end.month, end.day, tzinfo=UTC))
    return fired_days(engine)


# January 2025: the 1st is a Wednesday, the 4th and 5th a weekend, the 6th a Monday.
JAN_1, JAN_15 = date(2025, 1, 1), date(2025, 1, 15)


def test_day_week_fires_on_that_local_day_only(engine: Engine) -> None:
    source = schedule_flow("- {type: io.kestra.plugin.core.condition.DayWeek, dayOfWeek: MONDAY}")
    assert run_schedule(engine, source, JAN_1, JAN_15) == [date(2025, 1, 6), date(2025, 1, 13)]


def test_day_week_tests_the_date_in_the_schedule_time_zone(engine: Engine) -> None:
    # 08:00 in Tokyo on Monday the 6th is 23:00 UTC on Sunday the 5th.
    source = schedule_flow(
        "- {type: DayWeekCondition, dayOfWeek: MONDAY}", cron="0 8 * * *", timezone="Asia/Tokyo"
    )
    go_live(engine, source, datetime(2025, 1, 1, tzinfo=UTC))
    Scheduler(engine).tick(datetime(2025, 1, 15, tzinfo=UTC))
    assert fired_days(engine, zone="Asia/Tokyo") == [date(2025, 1, 6), date(2025, 1, 13)]
    assert fired_days(engine) == [date(2025, 1, 5), date(2025, 1, 12)]


def test_day_week_in_month_picks_first_second_and_last(engine: Engine) -> None:
    triggers = "".join(
        schedule_trigger(
            f"- {{type: DayWeekInMonth, dayOfWeek: {day}, dayInMonth: {rank}}}",
            trigger=rank.lower(),
        )
        for day, rank in (("MONDAY", "FIRST"), ("MONDAY", "SECOND"), ("FRIDAY", "LAST"))
    )
    source = "id: sched\nnamespace: demo\ntasks:\n  - {id: a, type: Log, message: hi}\ntriggers:\n"
    go_live(engine, source + triggers, datetime(2025, 1, 1, tzinfo=UTC))
    Scheduler(engine).tick(datetime(2025, 3, 1, tzinfo=UTC))
    assert fired_days(engine, "first") == [date(2025, 1, 6), date(2025, 2, 3)]
    assert fired_days(engine, "second") == [date(2025, 1, 13), date(2025, 2, 10)]
    assert fired_days(engine, "last") == [date(2025, 1, 31), date(2025, 2, 28)]


def test_weekend_fires_on_saturday_and_sunday(engine: Engine) -> None:
    source = schedule_flow("- {type: io.kestra.core.models.conditions.types.WeekendCondition}")
    assert run_schedule(engine, source, JAN_1, JAN_15) == [
        date(2025, 1, 4),
        date(2025, 1, 5),
        date(2025, 1, 11),
        date(2025, 1, 12),
    ]


def test_time_between_compares_times_with_their_offsets(engine: Engine) -> None:
    # Hourly, in Paris (UTC+1 in January); the bounds are strict, as in Kestra.
    source = schedule_flow(
        "- {type: TimeBetween, after: '09:30:00+01:00', before: '12:00:00+01:00'}",
        cron="0 * * * *",
        timezone="Europe/Paris",
    )
    go_live(engine, source, datetime(2025, 1, 6, tzinfo=UTC))
    Scheduler(engine).tick(datetime(2025, 1, 7, tzinfo=UTC))
    assert [t.hour for t in fired(engine, zone="Europe/Paris")] == [10, 11]


def test_time_between_with_one_bound_in_utc(engine: Engine) -> None:
    source = schedule_flow("- {type: TimeBetween, after: '20:00:00Z'}", cron="0 * * * *")
    go_live(engine, source, datetime(2025, 1, 6, tzinfo=UTC))
    Scheduler(engine).tick(datetime(2025, 1, 7, tzinfo=UTC))
    assert [t.hour for t in fired(engine)] == [21, 22, 23]


def test_date_time_between_bounds_are_inclusive(engine: Engine) -> None:
    source = schedule_flow(
        "- type: DateTimeBetween\n"
        "  after: 2025-01-03T11:00:00Z\n"
        "  before: '2025-01-05T12:00:00+01:00'\n"
    )
    assert run_schedule(engine, source, JAN_1, JAN_15) == [
        date(2025, 1, 3),
        date(2025, 1, 4),
        date(2025, 1, 5),
    ]


def test_public_holiday_follows_the_country_and_subdivision(engine: Engine) -> None:
    source = "id: sched\nnamespace: demo\ntasks:\n  - {id: a, type: Log, message: hi}\ntriggers:\n"
    source += schedule_trigger("- {type: PublicHoliday, country: FR}", trigger="fr")
    source += schedule_trigger("- {type: PublicHoliday, country: US}", trigger="us")
    source += schedule_trigger(
        "- {type: PublicHoliday, country: US, subDivision: US-CA}", trigger="ca"
    )
    go_live(engine, source, datetime(2025, 3, 25, tzinfo=UTC))
    Scheduler(engine).tick(datetime(2025, 7, 20, tzinfo=UTC))
    # Easter Monday, May Day, Victory Day, Ascension, Whit Monday, Bastille Day.
    assert fired_days(engine, "fr") == [
        date(2025, 4, 21),
        date(2025, 5, 1),
        date(2025, 5, 8),
        date(2025, 5, 29),
        date(2025, 6, 9),
        date(2025, 7, 14),
    ]
    assert fired_days(engine, "us") == [date(2025, 5, 26), date(2025, 6, 19), date(2025, 7, 4)]
    # California adds Cesar Chavez Day (March 31).
    assert fired_days(engine, "ca") == [date(2025, 3, 31), *fired_days(engine, "us")]


def test_not_skips_holidays_and_weekends(engine: Engine) -> None:
    # Kestra's own example: work days in France.
    source = schedule_flow(
        "- type: io.kestra.plugin.core.condition.Not\n"
        "  conditions:\n"
        "    - {type: io.kestra.plugin.core.condition.PublicHoliday, country: FR}\n"
        "    - {type: io.kestra.plugin.core.condition.Weekend}\n"
    )
    days = run_schedule(engine, source, date(2025, 7, 10), date(2025, 7, 19))
    assert days == [date(2025, 7, d) for d in (10, 11, 15, 16, 17, 18)]


def test_or_fires_when_any_condition_holds(engine: Engine) -> None:
    source = schedule_flow(
        "- type: Or\n"
        "  conditions:\n"
        "    - {type: DayWeek, dayOfWeek: MONDAY}\n"
        "    - {type: DayWeek, dayOfWeek: SUNDAY}\n"
    )
    days = run_schedule(engine, source, JAN_1, JAN_15)
    assert days == [date(2025, 1, 5), date(2025, 1, 6), date(2025, 1, 12), date(2025, 1, 13)]


def test_expression_skips_a_time_that_renders_false(engine: Engine) -> None:
    # trigger.date is the local ISO time, so [8:10] is the day of the month.
    source = schedule_flow(
        "- {type: Expression, expression: \"{{ trigger.date[8:10] in ['02', '09'] }}\"}\n"
        "- {type: ExpressionCondition, expression: '{{ schedule.next > trigger.date }}'}\n"
    )
    assert run_schedule(engine, source, JAN_1, JAN_15) == [date(2025, 1, 2), date(2025, 1, 9)]


def test_skipped_times_are_logged_and_recorded_so_no_scheduler_retries_them(
    engine: Engine,
) -> None:
    source = schedule_flow("- {type: DayWeek, dayOfWeek: MONDAY}")
    go_live(engine, source, datetime(2025, 1, 1, tzinfo=UTC))
    now = datetime(2025, 1, 9, tzinfo=UTC)
    with capture_logs() as logs:
        assert Scheduler(engine).tick(now) == 1
        # Neither this scheduler nor a fresh one (another process) tries them again.
        assert Scheduler(engine).tick(now) == 0
        assert Scheduler(engine).tick(datetime(2025, 1, 10, tzinfo=UTC)) == 0
    skipped = [line for line in logs if line["event"] == "schedule_skipped_by_condition"]
    # Each skipped day once: 1-5 and 7-8 on the first tick, the 9th on the last.
    assert [line["date"][:10] for line in skipped] == [
        f"2025-01-0{d}" for d in (1, 2, 3, 4, 5, 7, 8, 9)
    ]
    assert {line["condition"] for line in skipped} == {"conditions[0] (DayWeek)"}
    assert fired_days(engine) == [date(2025, 1, 6)]


def test_a_condition_that_cannot_be_evaluated_skips_the_time_loudly(engine: Engine) -> None:
    source = schedule_flow("- {type: Expression, expression: '{{ trigger.nope.missing }}'}")
    go_live(engine, source, datetime(2025, 1, 1, tzinfo=UTC))
    with capture_logs() as logs:
        assert Scheduler(engine).tick(datetime(2025, 1, 3, tzinfo=UTC)) == 0
        assert Scheduler(engine).tick(datetime(2025, 1, 3, tzinfo=UTC)) == 0
    failed = [line for line in logs if line["event"] == "schedule_condition_failed"]
    assert len(failed) == 2  # the 1st and the 2nd, each once
    assert "conditions[0].expression" in failed[0]["error"]
    assert fired(engine) == []


# --- Flow triggers -----------------------------------------------------------------

UPSTREAM = """\
id: upstream
namespace: demo
inputs:
  - {id: day, type: STRING, defaults: '2025-01-06'}
tasks:
  - {id: a, type: Log, message: hi}
outputs:
  - {id: day, type: STRING, value: '{{ inputs.day }}'}
"""

FLAKY = """\
id: flaky
namespace: demo
tasks:
  - id: boom
    type: Fail
    retry: {type: constant, interval: PT0S, maxAttempts: 2}
"""

STEADY = "id: steady\nnamespace: demo\ntasks:\n  - {id: boom, type: Fail}\n"


def listener(conditions: str, *, listener_id: str = "listener") -> str:
    """A flow whose Flow trigger carries ``conditions`` (YAML list items)."""
    indented = "".join(f"      {line}\n" for line in conditions.strip("\n").splitlines())
    return (
        f"id: {listener_id}\nnamespace: demo\ntasks:\n  - {{id: a, type: Log, message: hi}}\n"
        f"triggers:\n  - id: on-end\n    type: Flow\n    conditions:\n{indented}"
    )


def end_run(
    engine: Engine,
    tmp_path: Path,
    flow_id: str,
    labels: dict[str, str] | None = None,
    **inputs: Any,
) -> str:
    """Run ``flow_id`` to its end with a real worker, and any run it triggers; its state."""
    execution = create_execution(engine, "demo", flow_id, inputs=inputs, labels=labels)
    worker = Worker(engine=engine, data_dir=tmp_path)
    for _ in range(20):
        if not worker.run_once():
            break
    with Session(engine) as session:
        row = session.get(ExecutionRow, execution.id)
        assert row is not None
        return row.state


def runs_of(engine: Engine, flow_id: str) -> list[ExecutionRow]:
    with Session(engine) as session:
        return list(
            session.exec(select(ExecutionRow).where(col(ExecutionRow.flow_id) == flow_id)).all()
        )


def put(engine: Engine, source: str, flow_id: str) -> None:
    put_flow(engine, "demo", flow_id, source, Provenance())


def test_flow_trigger_has_retry_attempt_fires_only_after_a_retry(
    engine: Engine, tmp_path: Path
) -> None:
    put(engine, FLAKY, "flaky")
    put(engine, STEADY, "steady")
    put(engine, listener("- {type: HasRetryAttempt, in: [FAILED]}"), "listener")
    put(
        engine,
        listener("- {type: HasRetryAttempt, in: [FAILED], notIn: [FAILED]}", listener_id="never"),
        "never",
    )
    assert end_run(engine, tmp_path, "steady") == "FAILED"
    assert runs_of(engine, "listener") == []  # failed, but never retried
    assert end_run(engine, tmp_path, "flaky") == "FAILED"
    assert [run.trigger["flowId"] for run in runs_of(engine, "listener")] == ["flaky"]
    assert runs_of(engine, "never") == []


def test_flow_trigger_date_conditions_read_a_templated_date(engine: Engine, tmp_path: Path) -> None:
    put(engine, UPSTREAM, "upstream")
    put(
        engine,
        listener(
            "- {type: ExecutionFlow, namespace: demo, flowId: upstream}\n"
            "- {type: Weekend, date: '{{ trigger.outputs.day }}'}\n"
        ),
        "listener",
    )
    put(
        engine,
        listener(
            "- type: Not\n"
            "  conditions:\n"
            "    - {type: PublicHoliday, country: FR, date: '{{ trigger.outputs.day }}'}\n"
            "- type: Or\n"
            "  conditions:\n"
            "    - {type: DayWeek, dayOfWeek: MONDAY, date: '{{ trigger.outputs.day }}'}\n"
            "    - {type: DayWeekInMonth, dayOfWeek: MONDAY, dayInMonth: LAST,"
            " date: '{{ trigger.outputs.day }}'}\n",
            listener_id="mondays",
        ),
        "mondays",
    )
    assert end_run(engine, tmp_path, "upstream", day="2025-01-06") == "SUCCESS"  # a Monday
    assert end_run(engine, tmp_path, "upstream", day="2025-01-04") == "SUCCESS"  # a Saturday
    assert end_run(engine, tmp_path, "upstream", day="2025-04-21") == "SUCCESS"  # Easter Monday
    weekend = runs_of(engine, "listener")
    assert [run.trigger["outputs"]["day"] for run in weekend] == ["2025-01-04"]
    assert [run.trigger["outputs"]["day"] for run in runs_of(engine, "mondays")] == ["2025-01-06"]


def test_flow_trigger_date_conditions_default_to_the_upstream_end(
    engine: Engine, tmp_path: Path
) -> None:
    put(engine, UPSTREAM, "upstream")
    # Without it, each listener's own end would fire the listeners again.
    from_upstream = "- {type: ExecutionFlow, namespace: demo, flowId: upstream}\n"
    put(
        engine,
        listener(from_upstream + "- {type: DateTimeBetween, after: 2000-01-01T00:00:00Z}"),
        "listener",
    )
    put(
        engine,
        listener(
            from_upstream + "- {type: DateTimeBetween, before: 2000-01-01T00:00:00Z}",
            listener_id="past",
        ),
        "past",
    )
    put(
        engine,
        listener(
            from_upstream
            + "- {type: Expression, expression: '{{ execution.state == \"SUCCESS\" }}'}\n"
            "- {type: TimeBetween, date: '{{ execution.endDate }}', before: '23:59:59.999999Z'}\n",
            listener_id="expr",
        ),
        "expr",
    )
    assert end_run(engine, tmp_path, "upstream") == "SUCCESS"
    assert len(runs_of(engine, "listener")) == 1
    assert runs_of(engine, "past") == []
    assert len(runs_of(engine, "expr")) == 1


def test_flow_trigger_execution_conditions_match_the_upstream(
    engine: Engine, tmp_path: Path
) -> None:
    put(engine, UPSTREAM, "upstream")
    put(
        engine,
        listener(
            "- {type: ExecutionNamespace, namespace: de, prefix: true}\n"
            "- {type: ExecutionFlowCondition, namespace: demo, flowId: upstream}\n"
            "- {type: ExecutionStatus, notIn: [FAILED]}\n"
            "- {type: ExecutionLabels, labels: {team: data}}\n"
        ),
        "listener",
    )
    put(
        engine,
        listener(
            "- {type: ExecutionNamespace, namespace: de}\n"  # equal, not a prefix
            "- {type: ExecutionFlow, namespace: demo, flowId: upstream}\n",
            listener_id="exact",
        ),
        "exact",
    )
    assert end_run(engine, tmp_path, "upstream", labels={"team": "ops"}) == "SUCCESS"
    assert runs_of(engine, "listener") == []
    assert end_run(engine, tmp_path, "upstream", labels={"team": "data"}) == "SUCCESS"
    assert [run.trigger["flowId"] for run in runs_of(engine, "listener")] == ["upstream"]
    assert runs_of(engine, "exact") == []


def test_when_is_tested_at_each_due_time(engine: Engine) -> None:
    # Kestra 1.x's Schedule `when`, with its calendar functions.
    source = (
        "id: sched\nnamespace: demo\ntasks:\n  - {id: a, type: Log, message: hi}\ntriggers:\n"
        "  - id: s\n    type: Schedule\n    cron: '0 11 * * *'\n"
        "    when: \"{{ dayOfWeek(trigger.date) == 'MONDAY' }}\"\n"
    )
    with capture_logs() as logs:
        days = run_schedule(engine, source, JAN_1, JAN_15)
    assert days == [date(2025, 1, 6), date(2025, 1, 13)]
    skipped = [line for line in logs if line["event"] == "schedule_skipped_by_condition"]
    assert skipped
    assert {line["condition"] for line in skipped} == {"when"}
