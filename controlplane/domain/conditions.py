"""Trigger conditions: when a Flow or Webhook trigger may start an execution."""

from __future__ import annotations

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
