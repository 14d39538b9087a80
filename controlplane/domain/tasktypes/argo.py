"""Flowables with Argo Workflows' semantics, for flows converted from Argo (docs/argo.md).

Kestra's flowables cover most of Argo; these three cover the rest:

- ``io.flowplane.argo.Dag``: a Dag whose tasks run by Argo's ``depends``
  logic over their dependencies' results (a task may run because another
  failed), with ``continueOn``, ``failFast``, ``target`` and Argo's rule for
  the dag's own phase;
- ``io.flowplane.argo.Loop``: one task per item of ``withItems``,
  ``withParam`` or ``withSequence``, whose outputs it aggregates in item order
  as Argo does (``outputs.result`` and ``outputs.parameters`` of a loop);
- ``io.flowplane.argo.Retry``: a retried steps or dag template (each attempt
  runs its tasks afresh).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from controlplane.domain.argo.depends import DependsError, parse_depends, referenced_tasks
from controlplane.domain.fields import DynDuration, StrictModel, Text
from controlplane.domain.tasktypes import flowable
from controlplane.domain.tasktypes.base import FlowableBase, TaskBase, positive_or_template

if TYPE_CHECKING:
    Task = TaskBase

Count = Annotated[int, BeforeValidator(positive_or_template)]


class ContinueOn(StrictModel):
    """Which failures of a dag task its dependents and the dag tolerate."""

    failed: bool = False
    error: bool = False


class ArgoDag(flowable.Dag):
    """A Dag with Argo's depends logic, continueOn, failFast and target."""

    TYPE = "io.flowplane.argo.Dag"
    ALIASES = ("argo.Dag", "ArgoDag")

    # Task id -> Argo depends expression over sibling ids (absent: all dependsOn).
    depends: dict[str, str] = Field(default_factory=dict)
    continueOn: dict[str, ContinueOn] = Field(default_factory=dict)  # noqa: N815 - Argo's name
    failFast: bool = True  # noqa: N815
    # Space-separated task ids (or Argo names, through taskNames) to run, with their ancestors.
    target: Text | None = None
    taskNames: dict[str, str] | None = None  # noqa: N815

    @model_validator(mode="after")
    def _depends_fit(self) -> ArgoDag:
        ids = {node.task.id: node for node in self.tasks}
        for task_id, text in self.depends.items():
            if task_id not in ids:
                raise ValueError(f"depends names {task_id!r}, which is not a task of this Dag")
            try:
                node = parse_depends(text)
            except DependsError as exc:
                raise ValueError(f"depends of {task_id!r}: {exc}") from None
            missing = set(referenced_tasks(node)) - set(ids[task_id].dependsOn)
            if missing:
                raise ValueError(
                    f"depends of {task_id!r} names {', '.join(sorted(missing))}, "
                    "which must be in its dependsOn too"
                )
        for task_id in self.continueOn:
            if task_id not in ids:
                raise ValueError(f"continueOn names {task_id!r}, which is not a task of this Dag")
        return self


class Sequence(StrictModel):
    """Argo's withSequence: numbers from start, ``count`` of them or up to ``end``."""

    count: Text | int | None = None
    start: Text | int | None = None
    end: Text | int | None = None
    format: Text | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Sequence:
        if (self.count is None) == (self.end is None):
            raise ValueError("give count or end (not both)")
        return self


class ArgoLoop(FlowableBase):
    """Run one task per item, in item order, and aggregate the items' outputs."""

    TYPE = "io.flowplane.argo.Loop"
    ALIASES = ("argo.Loop",)

    # withItems (a list) or withParam (a template rendering a JSON list).
    items: list[Any] | Text | None = None
    sequence: Sequence | None = None
    concurrency: Count = 0
    failFast: bool = False  # noqa: N815 - Argo's name
    # The task whose outputs (result, parameters) each item contributes.
    collect: str | None = None
    tasks: Annotated[list[Task], Field(min_length=1, max_length=1)]

    @model_validator(mode="after")
    def _one_source(self) -> ArgoLoop:
        if (self.items is None) == (self.sequence is None):
            raise ValueError("give items or sequence (not both)")
        return self

    def child_lists(self) -> dict[str, list[TaskBase]]:  # noqa: D102 - see TaskBase
        return {"tasks": list(self.tasks), **super().child_lists()}


class Backoff(StrictModel):
    """How long to wait before each retry: interval, times delayFactor, up to maxInterval."""

    interval: DynDuration = "PT0S"
    delayFactor: float | None = Field(default=None, gt=1)  # noqa: N815
    maxInterval: DynDuration | None = None  # noqa: N815
    maxDuration: DynDuration | None = None  # noqa: N815


class ArgoRetry(FlowableBase):
    """Run the tasks again, afresh, until they succeed or ``limit`` retries are spent."""

    TYPE = "io.flowplane.argo.Retry"
    ALIASES = ("argo.Retry",)

    limit: int = Field(ge=0)
    backoff: Backoff | None = None
    # Rendered after a failed attempt: the tasks run again only when it is true.
    condition: Text | None = None
    tasks: Annotated[list[Task], Field(min_length=1)]

    def child_lists(self) -> dict[str, list[TaskBase]]:  # noqa: D102
        return {"tasks": list(self.tasks), **super().child_lists()}
