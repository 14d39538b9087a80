"""Triggers: what starts an execution without a person asking."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import Discriminator, Field, Tag, field_validator

# Importing the task types loads the plugins, whose polling trigger types join the union below.
import controlplane.domain.tasktypes  # noqa: F401
from controlplane.domain.conditions import Condition, misplaced
from controlplane.domain.fields import DynDuration, State, StrictModel, Text
from controlplane.domain.polling import POLLING_TRIGGERS, PollingTrigger, canonical_trigger

_PREFIX = "io.kestra.plugin.core.trigger."


class _TriggerBase(StrictModel):
    KIND: ClassVar[str] = ""

    id: Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$", max_length=100)]
    type: str
    description: str | None = None
    disabled: bool = False
    conditions: list[Condition] | None = None
    stopAfter: list[State] | None = None  # noqa: N815 - Kestra's field name
    inputs: dict[str, Any] | None = None
    labels: dict[str, Any] | list[dict[str, Any]] | None = None

    @field_validator("type")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return _PREFIX + cls.KIND if value in TRIGGER_NAMES else value

    @field_validator("conditions")
    @classmethod
    def _conditions_fit(cls, value: list[Condition] | None) -> list[Condition] | None:
        # Refused here rather than skipped when evaluated, as Kestra would do silently.
        problem = misplaced(value or [], cls.KIND)
        if problem is not None:
            raise ValueError(problem)
        return value


def _refuse(name: str, kind: str, instead: str) -> Any:
    """A validator that refuses ``name`` when it is set: the services never read it."""

    def check(value: Any) -> Any:
        if value is not None:
            raise ValueError(f"{name} is not supported on a {kind} trigger; {instead}")
        return value

    return field_validator(name, mode="before")(check)


class Backfill(StrictModel):
    """A past interval to replay a Schedule over."""

    start: Text
    end: Text | None = None
    labels: dict[str, Any] | list[dict[str, Any]] | None = None


class Schedule(_TriggerBase):
    """Start an execution at each time a cron expression names."""

    KIND: ClassVar[str] = "Schedule"
    cron: Text
    timezone: Text = "Etc/UTC"
    withSeconds: bool = False  # noqa: N815
    backfill: Backfill | None = None
    recoverMissedSchedules: Literal["ALL", "LAST", "NONE"] | None = None  # noqa: N815
    lateMaximumDelay: DynDuration | None = None  # noqa: N815
    # Kestra 1.x: a template tested at each due time, after ``conditions``; blank
    # or false skips that time (``dayOfWeek(trigger.date) == 'MONDAY'``).
    when: Text | None = None

    # Backfills are started through the API.
    _no_backfill = _refuse(
        "backfill",
        "Schedule",
        "start one with POST /api/v1/executions/{namespace}/{flowId}/backfill",
    )


class Webhook(_TriggerBase):
    """Start an execution when ``/api/v1/executions/webhook/{ns}/{flow}/{key}`` is called."""

    KIND: ClassVar[str] = "Webhook"
    key: Annotated[Text, Field(min_length=1, max_length=256)]

    _no_stop_after = _refuse("stopAfter", "Webhook", "only a Schedule trigger stops")


class PreconditionFilter(StrictModel):
    """One test on an upstream execution's namespace, flow id, labels or an expression."""

    field: Literal["NAMESPACE", "FLOW_ID", "EXPRESSION", "LABELS"]
    type: Literal[
        "EQUAL_TO",
        "NOT_EQUAL_TO",
        "STARTS_WITH",
        "ENDS_WITH",
        "CONTAINS",
        "REGEX",
        "IS_TRUE",
        "IS_FALSE",
        "IS_NULL",
        "IS_NOT_NULL",
        "IN",
        "NOT_IN",
    ]
    value: Any = None
    values: list[Any] | None = None


class PreconditionWhere(StrictModel):
    """A named group of filters."""

    id: str
    operand: Literal["AND", "OR"] = "AND"
    filters: list[PreconditionFilter]


class UpstreamFlow(StrictModel):
    """An upstream flow whose end states count toward the preconditions."""

    namespace: Text
    flowId: Text  # noqa: N815
    states: list[State] = Field(default_factory=lambda: [State.SUCCESS])
    labels: dict[str, Any] | None = None


class TimeWindow(StrictModel):
    """The window within which every precondition must be met."""

    type: Literal["DURATION_WINDOW", "SLIDING_WINDOW", "DAILY_TIME_DEADLINE", "DAILY_TIME_WINDOW"]
    window: DynDuration | None = None
    windowAdvance: DynDuration | None = None  # noqa: N815
    startTime: Text | None = None  # noqa: N815
    endTime: Text | None = None  # noqa: N815
    deadline: Text | None = None


class Preconditions(StrictModel):
    """Kestra's ``preconditions``: several upstream flows within a window."""

    id: str | None = None
    flows: list[UpstreamFlow] | None = None
    where: list[PreconditionWhere] | None = None
    timeWindow: TimeWindow | None = None  # noqa: N815
    resetOnSuccess: bool = True  # noqa: N815


class FlowTrigger(_TriggerBase):
    """Start an execution when an upstream execution ends and the conditions hold."""

    KIND: ClassVar[str] = "Flow"
    preconditions: Preconditions | None = None
    states: list[State] | None = None

    _no_stop_after = _refuse("stopAfter", "Flow", "only a Schedule trigger stops")


TRIGGER_NAMES = {
    name: kind
    for kind in ("Schedule", "Webhook", "Flow")
    for name in (kind, _PREFIX + kind, f"trigger.{kind}")
}


def _trigger_tag(value: Any) -> str | None:
    name = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(name, str):
        return None
    return TRIGGER_NAMES.get(name) or canonical_trigger(name) or name


def _unknown_trigger_message() -> str:
    message = (
        "unknown trigger type; Flowplane supports io.kestra.plugin.core.trigger.Schedule, "
        "Webhook and Flow"
    )
    if POLLING_TRIGGERS:
        message += ", and the polling triggers " + ", ".join(sorted(POLLING_TRIGGERS))
    return message


if TYPE_CHECKING:
    # To the type checker a polling trigger is its base class; at run time the
    # union holds every registered polling trigger type, each under its name.
    Trigger = Schedule | Webhook | FlowTrigger | PollingTrigger
else:
    Trigger = Annotated[
        Union[
            (
                Annotated[Schedule, Tag("Schedule")],
                Annotated[Webhook, Tag("Webhook")],
                Annotated[FlowTrigger, Tag("Flow")],
                *(Annotated[cls, Tag(name)] for name, cls in POLLING_TRIGGERS.items()),
            )
        ],
        Discriminator(
            _trigger_tag,
            custom_error_type="unknown_trigger",
            custom_error_message=_unknown_trigger_message(),
        ),
    ]
