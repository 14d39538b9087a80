"""Trigger conditions: when a Flow or Webhook trigger may start an execution."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Any, ClassVar

from pydantic import Discriminator, Field, Tag

from controlplane.domain.fields import DynDuration, State, StrictModel, Text

_PREFIX = "io.kestra.plugin.core.condition."


class ExecutionFlow(StrictModel):
    """The upstream execution belongs to this flow."""

    NAME: ClassVar[str] = "ExecutionFlow"
    type: str
    id: str | None = None
    namespace: Text
    flowId: Text  # noqa: N815 - Kestra's field name


class ExecutionNamespace(StrictModel):
    """The upstream execution's namespace equals (or starts with) this one."""

    NAME: ClassVar[str] = "ExecutionNamespace"
    type: str
    id: str | None = None
    namespace: Text
    comparison: str | None = None
    prefix: bool = False


class ExecutionStatus(StrictModel):
    """The upstream execution ended in one of ``in`` and none of ``notIn``."""

    NAME: ClassVar[str] = "ExecutionStatus"
    type: str
    id: str | None = None
    in_: list[State] | None = Field(default=None, alias="in")
    notIn: list[State] | None = None  # noqa: N815


class ExecutionLabels(StrictModel):
    """The upstream execution carries these labels."""

    NAME: ClassVar[str] = "ExecutionLabels"
    type: str
    id: str | None = None
    labels: dict[str, Any] | list[dict[str, Any]]


class Expression(StrictModel):
    """A template that must render true."""

    NAME: ClassVar[str] = "ExpressionCondition"
    type: str
    id: str | None = None
    expression: Text


class Multiple(StrictModel):
    """All named conditions hold within a time window (across executions)."""

    NAME: ClassVar[str] = "MultipleCondition"
    type: str
    id: str | None = None
    window: DynDuration = "P1D"
    windowAdvance: DynDuration = "P0D"  # noqa: N815
    conditions: dict[str, Condition]


_MODELS: tuple[type[StrictModel], ...] = (
    ExecutionFlow,
    ExecutionNamespace,
    ExecutionStatus,
    ExecutionLabels,
    Expression,
    Multiple,
)
# Kestra accepts both the short and the `...Condition` class names.
CONDITION_NAMES: dict[str, str] = {}
for _model in _MODELS:
    _name = _model.NAME  # type: ignore[attr-defined]
    _bare = _name.removesuffix("Condition")
    for _alias in {_name, _bare, f"{_bare}Condition"}:
        CONDITION_NAMES[_alias] = _name
        CONDITION_NAMES[_PREFIX + _alias] = _name


def _condition_tag(value: Any) -> str | None:
    name = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return CONDITION_NAMES.get(name, name) if isinstance(name, str) else None


Condition = Annotated[
    Annotated[ExecutionFlow, Tag("ExecutionFlow")]
    | Annotated[ExecutionNamespace, Tag("ExecutionNamespace")]
    | Annotated[ExecutionStatus, Tag("ExecutionStatus")]
    | Annotated[ExecutionLabels, Tag("ExecutionLabels")]
    | Annotated[Expression, Tag("ExpressionCondition")]
    | Annotated[Multiple, Tag("MultipleCondition")],
    Discriminator(
        _condition_tag,
        custom_error_type="unknown_condition",
        custom_error_message=(
            "unknown condition type; Flowplane supports ExecutionFlow, ExecutionNamespace, "
            "ExecutionStatus, ExecutionLabels, ExpressionCondition and MultipleCondition"
        ),
    ),
]

Multiple.model_rebuild()


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
