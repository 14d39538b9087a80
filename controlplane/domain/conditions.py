"""Trigger conditions: when a Schedule, Flow or Webhook trigger may start an execution.

Each condition is a model with Kestra's type name (``NAME``) and its older
spellings, and ``condition_holds`` tests one against a ``ConditionContext``: the
variables its templates see (``trigger.date`` for a schedule) and, for a Flow
trigger, the upstream execution. Which conditions a trigger kind may carry is
``misplaced``'s answer, asked at validation; evaluation is pure, so the
scheduler and the flow-trigger listener share it.
"""

from __future__ import annotations

import locale
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from controlplane.domain import expressions
from controlplane.domain.fields import DynDuration, State, StrictModel, Text
from controlplane.errors import EvaluationError

_PREFIX = "io.kestra.plugin.core.condition."
_OLD_PREFIX = "io.kestra.core.models.conditions.types."
_TRIGGER_DATE = "{{ trigger.date }}"
DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
DAYS_IN_MONTH = ("FIRST", "SECOND", "THIRD", "FOURTH", "LAST")


class _ConditionBase(StrictModel):
    NAME: ClassVar[str] = ""
    # Older type names Kestra still accepts, besides ``<NAME>Condition``.
    ALIASES: ClassVar[tuple[str, ...]] = ()
    type: str
    id: str | None = None


class ExecutionFlow(_ConditionBase):
    """The upstream execution belongs to this flow."""

    NAME: ClassVar[str] = "ExecutionFlow"
    namespace: Text
    flowId: Text  # noqa: N815 - Kestra's field name


class ExecutionNamespace(_ConditionBase):
    """The upstream execution's namespace equals (or starts with) this one."""

    NAME: ClassVar[str] = "ExecutionNamespace"
    namespace: Text
    comparison: str | None = None
    prefix: bool = False


class ExecutionStatus(_ConditionBase):
    """The upstream execution ended in one of ``in`` and none of ``notIn``."""

    NAME: ClassVar[str] = "ExecutionStatus"
    in_: list[State] | None = Field(default=None, alias="in")
    notIn: list[State] | None = None  # noqa: N815


class ExecutionLabels(_ConditionBase):
    """The upstream execution carries these labels."""

    NAME: ClassVar[str] = "ExecutionLabels"
    labels: dict[str, Any] | list[dict[str, Any]]


class HasRetryAttempt(_ConditionBase):
    """A task of the upstream execution was retried, an attempt ending in ``in`` and not ``notIn``.

    As in Kestra, a missing ``in`` matches no attempt, so the condition never holds.
    """

    NAME: ClassVar[str] = "HasRetryAttempt"
    in_: list[State] | None = Field(default=None, alias="in")
    notIn: list[State] | None = None  # noqa: N815


class Expression(_ConditionBase):
    """A template that must not render blank or ``false``."""

    NAME: ClassVar[str] = "Expression"
    ALIASES: ClassVar[tuple[str, ...]] = ("VariableCondition",)
    expression: Text


class Not(_ConditionBase):
    """None of the nested conditions holds."""

    NAME: ClassVar[str] = "Not"
    conditions: Annotated[list[Condition], Field(min_length=1)]


class Or(_ConditionBase):
    """At least one of the nested conditions holds."""

    NAME: ClassVar[str] = "Or"
    conditions: Annotated[list[Condition], Field(min_length=1)]


def _literal_checked(check: Any) -> Any:
    """Run ``check`` on a literal value; a template is checked once rendered."""

    def validate(value: Any) -> Any:
        if isinstance(value, str) and not expressions.is_templated(value):
            check(value)
        return value

    return validate


class _DatedBase(_ConditionBase):
    """A condition on a date, the trigger's date unless ``date`` says otherwise."""

    date: Text = _TRIGGER_DATE

    @field_validator("date")
    @classmethod
    def _date_parses(cls, value: str) -> str:
        return str(_literal_checked(local_date)(value))


class DayWeek(_DatedBase):
    """The date falls on ``dayOfWeek``."""

    NAME: ClassVar[str] = "DayWeek"
    dayOfWeek: Text  # noqa: N815

    @field_validator("dayOfWeek")
    @classmethod
    def _day(cls, value: str) -> str:
        return str(_literal_checked(_day_index)(value))


class DayWeekInMonth(_DatedBase):
    """The date is the FIRST, SECOND, THIRD, FOURTH or LAST ``dayOfWeek`` of its month."""

    NAME: ClassVar[str] = "DayWeekInMonth"
    dayOfWeek: Text  # noqa: N815
    dayInMonth: Text  # noqa: N815

    @field_validator("dayOfWeek")
    @classmethod
    def _day(cls, value: str) -> str:
        return str(_literal_checked(_day_index)(value))

    @field_validator("dayInMonth")
    @classmethod
    def _rank(cls, value: str) -> str:
        return str(_literal_checked(_day_in_month)(value))


class Weekend(_DatedBase):
    """The date is a Saturday or a Sunday."""

    NAME: ClassVar[str] = "Weekend"


class PublicHoliday(_DatedBase):
    """The date is a public holiday of ``country`` (and ``subDivision``), per ``holidays``."""

    NAME: ClassVar[str] = "PublicHoliday"
    country: Text | None = None
    subDivision: Text | None = None  # noqa: N815

    @model_validator(mode="after")
    def _known_calendar(self) -> PublicHoliday:
        literal = [v for v in (self.country, self.subDivision) if v is not None]
        if self.country is not None and not any(expressions.is_templated(v) for v in literal):
            holiday_calendar(self.country, self.subDivision)
        return self


class _BetweenBase(_DatedBase):
    after: Text | None = None
    before: Text | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> _BetweenBase:
        if self.after is None and self.before is None:
            raise ValueError(f"{self.NAME} needs after, before or both")
        return self


class TimeBetween(_BetweenBase):
    """The date's time of day is strictly after ``after`` and before ``before`` (ISO times)."""

    NAME: ClassVar[str] = "TimeBetween"

    @field_validator("after", "before")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        return None if value is None else str(_literal_checked(_clock)(value))

    @field_validator("date")
    @classmethod
    def _date_is_a_moment(cls, value: str) -> str:
        return str(_literal_checked(zoned_datetime)(value))


class DateTimeBetween(_BetweenBase):
    """The date lies within ``[after, before]``: ISO datetimes with a zone, either optional."""

    NAME: ClassVar[str] = "DateTimeBetween"

    @field_validator("after", "before", "date")
    @classmethod
    def _moment(cls, value: str | None) -> str | None:
        return None if value is None else str(_literal_checked(zoned_datetime)(value))


class Multiple(_ConditionBase):
    """All named conditions hold within a time window (across executions)."""

    NAME: ClassVar[str] = "MultipleCondition"
    ALIASES: ClassVar[tuple[str, ...]] = ("Multiple",)
    window: DynDuration = "P1D"
    windowAdvance: DynDuration = "P0D"  # noqa: N815
    conditions: dict[str, Condition]


MODELS: tuple[type[_ConditionBase], ...] = (
    ExecutionFlow,
    ExecutionNamespace,
    ExecutionStatus,
    ExecutionLabels,
    HasRetryAttempt,
    Expression,
    Not,
    Or,
    DayWeek,
    DayWeekInMonth,
    TimeBetween,
    DateTimeBetween,
    Weekend,
    PublicHoliday,
    Multiple,
)
# Conditions that test the upstream execution of a Flow trigger.
EXECUTION_CONDITIONS: tuple[type[_ConditionBase], ...] = (
    ExecutionFlow,
    ExecutionNamespace,
    ExecutionStatus,
    ExecutionLabels,
    HasRetryAttempt,
    Multiple,
)

# Every spelling Kestra accepts: the short name and its ``...Condition`` form,
# bare, under the current package and under the pre-0.17 one.
CONDITION_NAMES: dict[str, str] = {}
for _model in MODELS:
    _bare = _model.NAME.removesuffix("Condition")
    for _alias in {_model.NAME, _bare, f"{_bare}Condition", *_model.ALIASES}:
        for _prefix in ("", _PREFIX, _OLD_PREFIX):
            CONDITION_NAMES[_prefix + _alias] = _model.NAME


def _condition_tag(value: Any) -> str | None:
    name = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return CONDITION_NAMES.get(name, name) if isinstance(name, str) else None


Condition = Annotated[
    Annotated[ExecutionFlow, Tag("ExecutionFlow")]
    | Annotated[ExecutionNamespace, Tag("ExecutionNamespace")]
    | Annotated[ExecutionStatus, Tag("ExecutionStatus")]
    | Annotated[ExecutionLabels, Tag("ExecutionLabels")]
    | Annotated[HasRetryAttempt, Tag("HasRetryAttempt")]
    | Annotated[Expression, Tag("Expression")]
    | Annotated[Not, Tag("Not")]
    | Annotated[Or, Tag("Or")]
    | Annotated[DayWeek, Tag("DayWeek")]
    | Annotated[DayWeekInMonth, Tag("DayWeekInMonth")]
    | Annotated[TimeBetween, Tag("TimeBetween")]
    | Annotated[DateTimeBetween, Tag("DateTimeBetween")]
    | Annotated[Weekend, Tag("Weekend")]
    | Annotated[PublicHoliday, Tag("PublicHoliday")]
    | Annotated[Multiple, Tag("MultipleCondition")],
    Discriminator(
        _condition_tag,
        custom_error_type="unknown_condition",
        custom_error_message=(
            "unknown condition type; Flowplane supports "
            + ", ".join(model.NAME for model in MODELS)
        ),
    ),
]

for _model in (Not, Or, Multiple):
    _model.model_rebuild()


def misplaced(conditions: Sequence[_ConditionBase], kind: str) -> str | None:
    """Why these conditions cannot go on a ``kind`` trigger, or None when they can.

    A Schedule has no upstream execution, so conditions on one are refused
    (Kestra would skip them silently). A Webhook's conditions are evaluated
    against its request, where only ``Expression`` applies. A
    ``MultipleCondition`` gathers across executions and must stay at the top
    of a Flow trigger's list.
    """
    for index, condition in enumerate(conditions):
        where = f"conditions[{index}]"
        if kind == "Webhook" and not isinstance(condition, Expression):
            return (
                f"{where}: {condition.NAME} cannot be used on a Webhook trigger; "
                "only Expression (ExpressionCondition) applies to a request"
            )
        if kind == "Schedule" and isinstance(condition, EXECUTION_CONDITIONS):
            return (
                f"{where}: {condition.NAME} cannot be used on a Schedule trigger: "
                "it tests an upstream execution, and a schedule has none"
            )
        if isinstance(condition, Multiple | Not | Or):
            nested = (
                list(condition.conditions.values())
                if isinstance(condition, Multiple)
                else condition.conditions
            )
            if any(isinstance(sub, Multiple) for sub in nested):
                return f"{where}: a MultipleCondition may only appear at the top of conditions"
            problem = misplaced(nested, kind)
            if problem is not None:
                return f"{where}.{problem}"
    return None


# --- evaluation --------------------------------------------------------------


@dataclass(frozen=True)
class Upstream:
    """The execution a Flow trigger reacts to, as its conditions see it."""

    namespace: str
    flow_id: str
    state: State
    labels: Mapping[str, Any] = field(default_factory=dict)
    # Per task run that was retried: the state of each of its attempts.
    retried: tuple[tuple[State, ...], ...] = ()


@dataclass(frozen=True)
class ConditionContext:
    """What conditions are tested against: template variables, and the upstream run if any."""

    variables: Mapping[str, Any]
    upstream: Upstream | None = None


def first_failing(conditions: Sequence[_ConditionBase], context: ConditionContext) -> int | None:
    """The index of the first condition that does not hold, or None when all hold.

    Raises ``EvaluationError`` naming the condition's field when one cannot be evaluated.
    """
    for index, condition in enumerate(conditions):
        if not condition_holds(condition, context, f"conditions[{index}]"):
            return index
    return None


def condition_holds(  # noqa: C901, PLR0911 - one branch per condition type
    condition: _ConditionBase, context: ConditionContext, where: str = "condition"
) -> bool:
    """Whether ``condition`` holds in ``context`` (Kestra's ``Condition.test``).

    ``MultipleCondition`` is not decided here: it gathers upstream ends across
    executions, which is the flow-trigger service's work.
    """
    if isinstance(condition, Not | Or):
        results = (
            condition_holds(sub, context, f"{where}.conditions[{i}]")
            for i, sub in enumerate(condition.conditions)
        )
        return any(results) if isinstance(condition, Or) else not any(results)
    if isinstance(condition, Expression):
        rendered = _render(condition.expression, context, f"{where}.expression")
        return expression_holds(rendered)
    if isinstance(condition, _DatedBase):
        return _dated_holds(condition, context, where)
    if isinstance(condition, Multiple):
        raise EvaluationError(f"{where}: a MultipleCondition is gathered across executions")
    upstream = context.upstream
    if upstream is None:
        raise EvaluationError(f"{where}: {condition.NAME} needs an upstream execution")
    if isinstance(condition, ExecutionFlow):
        return (condition.namespace, condition.flowId) == (upstream.namespace, upstream.flow_id)
    if isinstance(condition, ExecutionNamespace):
        if condition.prefix or condition.comparison == "PREFIX":
            return upstream.namespace.startswith(condition.namespace)
        return upstream.namespace == condition.namespace
    if isinstance(condition, ExecutionStatus):
        return (
            condition.in_ is None or upstream.state in condition.in_
        ) and upstream.state not in (condition.notIn or [])
    if isinstance(condition, ExecutionLabels):
        wanted = _labels(condition.labels)
        return all(str(upstream.labels.get(k)) == str(v) for k, v in wanted.items())
    if isinstance(condition, HasRetryAttempt):
        allowed, refused = set(condition.in_ or []), set(condition.notIn or [])
        return any(s in allowed and s not in refused for run in upstream.retried for s in run)
    raise EvaluationError(f"{where}: {condition.NAME} cannot be evaluated")


def expression_holds(rendered: str) -> bool:
    """Kestra's rule for an Expression: anything but blank text or ``false`` holds."""
    text = rendered.strip()
    return bool(text) and text != "false"


def _labels(labels: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    if isinstance(labels, dict):
        return labels
    return {str(item.get("key")): item.get("value") for item in labels}


def _dated_holds(condition: _DatedBase, context: ConditionContext, where: str) -> bool:
    text = _render(condition.date, context, f"{where}.date")
    try:
        if isinstance(condition, TimeBetween):
            return _time_between(condition, zoned_datetime(text), context, where)
        if isinstance(condition, DateTimeBetween):
            moment = zoned_datetime(text)
            after, before = (
                zoned_datetime(_render(bound, context, where)) if bound is not None else None
                for bound in (condition.after, condition.before)
            )
            return (after is None or moment >= after) and (before is None or moment <= before)
        day = local_date(text)
        if isinstance(condition, Weekend):
            return day.weekday() >= 5  # noqa: PLR2004 - Saturday is 5, Sunday 6
        if isinstance(condition, DayWeek):
            return day.weekday() == _day_index(_render(condition.dayOfWeek, context, where))
        if isinstance(condition, DayWeekInMonth):
            weekday = _day_index(_render(condition.dayOfWeek, context, where))
            rank = _day_in_month(_render(condition.dayInMonth, context, where))
            return _nth_weekday(day, weekday, rank) == day
        if isinstance(condition, PublicHoliday):
            country = _render_optional(condition.country, context, where)
            subdivision = _render_optional(condition.subDivision, context, where)
            return day in holiday_calendar(country or _locale_country(), subdivision, day.year)
    except ValueError as exc:
        raise EvaluationError(f"{where}: {exc}") from None
    raise EvaluationError(f"{where}: {condition.NAME} cannot be evaluated")


def _time_between(
    condition: TimeBetween, moment: datetime, context: ConditionContext, where: str
) -> bool:
    """Compare times of day as Java's ``OffsetTime`` does: as instants on one shared day."""
    offset = moment.utcoffset() or timedelta()
    current = _seconds(moment.timetz(), offset)
    after, before = (
        _seconds(_clock(_render(bound, context, where)), offset) if bound is not None else None
        for bound in (condition.after, condition.before)
    )
    return (after is None or current > after) and (before is None or current < before)


def _seconds(clock: time, default_offset: timedelta) -> float:
    """Seconds since midnight UTC of ``clock``; a time without an offset takes the tested one's."""
    # A region zone (from the tested datetime) has no offset without a date: use the given one.
    own = clock.utcoffset()
    offset = own if own is not None else default_offset
    since_midnight = clock.hour * 3600 + clock.minute * 60 + clock.second + clock.microsecond / 1e6
    return since_midnight - offset.total_seconds()


def _nth_weekday(day: date, weekday: int, rank: str) -> date:
    """The FIRST..FOURTH or LAST ``weekday`` of ``day``'s month (Java's TemporalAdjusters)."""
    if rank == "LAST":
        following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        last = following - timedelta(days=1)
        return last - timedelta(days=(last.weekday() - weekday) % 7)
    first = day.replace(day=1)
    first += timedelta(days=(weekday - first.weekday()) % 7)
    return first + timedelta(weeks=DAYS_IN_MONTH.index(rank))


def _render(text: str, context: ConditionContext, where: str) -> str:
    if not expressions.is_templated(text):
        return text
    try:
        return expressions.render(text, context.variables)
    except expressions.RenderError as exc:
        raise EvaluationError(f"{where}: {exc}") from None


def _render_optional(text: str | None, context: ConditionContext, where: str) -> str | None:
    if text is None:
        return None
    return _render(text, context, where).strip() or None


# --- values ------------------------------------------------------------------


def zoned_datetime(text: str) -> datetime:
    """An ISO 8601 datetime with an offset or ``Z``, optionally ``[Region/City]`` after it.

    Kestra requires the offset; Flowplane reads a datetime without one as UTC.
    """
    raw = text.strip()
    zone = None
    if raw.endswith("]") and "[" in raw:
        raw, _, name = raw[:-1].partition("[")
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} in {text!r}") from None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 datetime") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone) if zone else moment


def local_date(text: str) -> date:
    """The calendar date of an ISO date, or of an ISO datetime in its own offset (as Kestra)."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return zoned_datetime(text).date()


def _clock(text: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time such as 16:00:00+02:00") from None


def _day_index(text: str) -> int:
    name = text.strip().upper()
    if name not in DAYS:
        raise ValueError(f"{text!r} is not a day of the week; use one of {', '.join(DAYS)}")
    return DAYS.index(name)


def _day_in_month(text: str) -> str:
    rank = text.strip().upper()
    if rank not in DAYS_IN_MONTH:
        raise ValueError(f"{text!r} is not one of {', '.join(DAYS_IN_MONTH)}")
    return rank


def _locale_country() -> str:
    """Kestra's default country: the one of the server's locale."""
    name = locale.getlocale()[0] or ""
    _, _, country = name.partition("_")
    if not country:
        raise ValueError("PublicHoliday needs country: the server's locale names none")
    return country


def holiday_calendar(
    country: str, subdivision: str | None, year: int | None = None
) -> frozenset[date]:
    """The public holidays of ``country`` (ISO 3166-1 alpha-2) and ``subdivision`` in ``year``.

    ``subdivision`` is ISO 3166-2, with or without its country prefix
    (``US-CA`` or ``CA``). Raises ``ValueError`` naming what the ``holidays``
    package does not know.
    """
    code = country.strip().upper()
    supported = holidays.list_supported_countries()
    if code not in supported:
        raise ValueError(
            f"country {country!r} is not an ISO 3166-1 code the holidays package knows"
        )
    subdiv = None
    if subdivision is not None:
        wanted = subdivision.strip().upper().removeprefix(f"{code}-")
        known = {str(s).upper(): str(s) for s in supported[code]}
        if wanted not in known:
            raise ValueError(f"subDivision {subdivision!r} is not a subdivision of {code}")
        subdiv = known[wanted]
    return _holidays(code, subdiv, year or datetime.now(UTC).year)


@lru_cache(maxsize=256)
def _holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))


# --- precondition windows ----------------------------------------------------


def window_bounds(
    kind: str,
    now: datetime,
    *,
    window: timedelta | None = None,
    advance: timedelta | None = None,
    start_time: time | None = None,
    end_time: time | None = None,
) -> tuple[datetime, datetime] | None:
    """The time window ``now`` falls in, for Kestra's precondition window kinds.

    - ``DURATION_WINDOW``: consecutive windows of ``window`` (default one day),
      starting each day at midnight UTC plus ``advance``.
    - ``SLIDING_WINDOW``: the ``window`` that ends now.
    - ``DAILY_TIME_WINDOW``: today's ``[start_time, end_time]``.
    - ``DAILY_TIME_DEADLINE``: today from midnight to ``end_time`` (the deadline).

    None means ``now`` lies outside every window of a daily kind: an upstream
    run that ends then does not count.
    """
    size = window or timedelta(days=1)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "SLIDING_WINDOW":
        return now - size, now
    if kind in {"DAILY_TIME_WINDOW", "DAILY_TIME_DEADLINE"}:
        begin = (
            datetime.combine(midnight.date(), start_time, now.tzinfo)
            if kind == "DAILY_TIME_WINDOW" and start_time
            else midnight
        )
        end = datetime.combine(midnight.date(), end_time or time.max, now.tzinfo)
        return (begin, end) if begin <= now <= end else None
    base = midnight + (advance or timedelta())
    if base > now:
        base -= timedelta(days=1)
    steps = (now - base) // size
    start = base + steps * size
    return start, start + size
