"""Building blocks shared by flows, tasks and triggers.

Kestra lets most properties hold either a literal or a ``{{ expression }}``
rendered at run time. The ``Dyn*`` types below accept exactly that: a literal of
the right kind, or a string that is a template. Everything else is refused with
one clear message instead of pydantic's per-union-member noise.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from controlplane.domain.durations import parse_duration

FLOW_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"
NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
TASK_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$"
MAX_ID_LENGTH = 100


def _is_template(value: object) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _dyn_int(value: Any) -> Any:
    if _is_template(value) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValueError("must be an integer or a {{ expression }}")


def _dyn_bool(value: Any) -> Any:
    if isinstance(value, bool) or _is_template(value):
        return value
    raise ValueError("must be true, false or a {{ expression }}")


def _dyn_duration(value: Any) -> Any:
    if _is_template(value):
        return value
    if not isinstance(value, str):
        # pydantic turns ValueError, not TypeError, into a located validation error
        raise ValueError("must be an ISO-8601 duration such as PT30S, or a {{ expression }}")
    parse_duration(value)
    return value


def _text(value: Any) -> Any:
    # YAML turns `format: 1` or `message: true` into numbers and booleans;
    # Kestra reads them as the text they look like, and so do we.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


DynInt = Annotated[int | str, BeforeValidator(_dyn_int)]
DynBool = Annotated[bool | str, BeforeValidator(_dyn_bool)]
DynDuration = Annotated[str, BeforeValidator(_dyn_duration)]
Text = Annotated[str, BeforeValidator(_text)]
TaskId = Annotated[str, Field(pattern=TASK_ID_PATTERN, max_length=MAX_ID_LENGTH)]


class StrictModel(BaseModel):
    """Base for every model of the dialect: unknown keys are errors, not ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class LogLevel(StrEnum):
    """Kestra's log levels."""

    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


class State(StrEnum):
    """Execution and task-run states, as Kestra names them."""

    CREATED = "CREATED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    RETRYING = "RETRYING"
    RETRIED = "RETRIED"
    RESTARTED = "RESTARTED"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLING = "KILLING"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"


_MAX_ATTEMPTS = AliasChoices("maxAttempts", "maxAttempt")


class _RetryBase(StrictModel):
    maxAttempts: int | None = Field(  # noqa: N815 - Kestra's field name
        default=None, ge=1, validation_alias=_MAX_ATTEMPTS, serialization_alias="maxAttempts"
    )
    maxDuration: DynDuration | None = None  # noqa: N815
    warningOnRetry: bool = False  # noqa: N815
    behavior: Literal["RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        if isinstance(data, dict) and "maxAttempt" in data and "maxAttempts" in data:
            raise ValueError("give maxAttempts or its older spelling maxAttempt, not both")
        return data


class ConstantRetry(_RetryBase):
    """Retry after the same interval each time."""

    type: Literal["constant"]
    interval: DynDuration


class ExponentialRetry(_RetryBase):
    """Retry with an interval that grows by ``delayFactor`` each attempt."""

    type: Literal["exponential"]
    interval: DynDuration
    maxInterval: DynDuration  # noqa: N815
    delayFactor: float | None = Field(default=None, gt=1)  # noqa: N815


class RandomRetry(_RetryBase):
    """Retry after a random interval between the bounds."""

    type: Literal["random"]
    minInterval: DynDuration  # noqa: N815
    maxInterval: DynDuration  # noqa: N815


Retry = Annotated[
    Annotated[ConstantRetry, Tag("constant")]
    | Annotated[ExponentialRetry, Tag("exponential")]
    | Annotated[RandomRetry, Tag("random")],
    Discriminator(lambda v: v.get("type") if isinstance(v, dict) else getattr(v, "type", None)),
]


class InputType(StrEnum):
    """The input types Kestra defines."""

    STRING = "STRING"
    ENUM = "ENUM"
    SELECT = "SELECT"
    MULTISELECT = "MULTISELECT"
    INT = "INT"
    FLOAT = "FLOAT"
    BOOLEAN = "BOOLEAN"
    BOOL = "BOOL"
    DATETIME = "DATETIME"
    DATE = "DATE"
    TIME = "TIME"
    DURATION = "DURATION"
    FILE = "FILE"
    JSON = "JSON"
    YAML = "YAML"
    URI = "URI"
    SECRET = "SECRET"  # noqa: S105 - the name of a type, not a secret
    ARRAY = "ARRAY"
    EMAIL = "EMAIL"


class Input(StrictModel):
    """A flow input (also used for a Pause task's ``onResume``)."""

    id: str = Field(
        validation_alias=AliasChoices("id", "name"),
        pattern=r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$",
        max_length=MAX_ID_LENGTH,
    )
    type: InputType = InputType.STRING
    description: str | None = None
    displayName: str | None = None  # noqa: N815
    required: bool = True
    defaults: Any = None
    prefill: Any = None
    values: list[Any] | str | None = None
    expression: str | None = None
    allowCustomValue: bool = False  # noqa: N815
    itemType: InputType | None = None  # noqa: N815
    min: Any = None
    max: Any = None
    after: Any = None
    before: Any = None
    validator: str | None = None
    extension: str | None = None
    dependsOn: dict[str, Any] | None = None  # noqa: N815

    @model_validator(mode="before")
    @classmethod
    def _one_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "id" in data and "name" in data:
            raise ValueError("give id or its older spelling name, not both")
        return data


class Output(StrictModel):
    """A flow output, rendered when the execution ends."""

    id: str = Field(pattern=r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$")
    type: InputType = InputType.STRING
    value: Any
    description: str | None = None
    displayName: str | None = None  # noqa: N815
    required: bool = True


class Concurrency(StrictModel):
    """How many executions of a flow may run at once, and what happens past that."""

    limit: int = Field(ge=1)
    behavior: Literal["QUEUE", "CANCEL", "FAIL"] = "QUEUE"


class PluginDefault(StrictModel):
    """Default property values for every task or trigger of a type."""

    type: str
    forced: bool = False
    values: dict[str, Any]


def pattern_matches(pattern: str, value: str) -> bool:
    """Full-match helper for the id patterns above."""
    return re.fullmatch(pattern, value) is not None
