"""Flowable tasks: they order, branch, repeat or wrap other tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from controlplane.domain.fields import DynBool, DynDuration, DynInt, Input, StrictModel, Text
from controlplane.domain.tasktypes.base import (
    FlowableBase,
    TaskBase,
    positive_or_template,
)
from controlplane.domain.tasktypes.scripts import NamespaceFiles

if TYPE_CHECKING:
    Task = TaskBase

Count = Annotated[DynInt, BeforeValidator(positive_or_template)]
TaskList = Annotated[list["Task"], Field(min_length=1)]


class Sequential(FlowableBase):
    """Run tasks one after the other."""

    TYPE = "io.kestra.plugin.core.flow.Sequential"
    ALIASES = ("Sequential", "io.kestra.core.tasks.flows.Sequential")

    tasks: TaskList

    def child_lists(self) -> dict[str, list[TaskBase]]:  # noqa: D102 - see base
        return {"tasks": list(self.tasks), **super().child_lists()}


class Parallel(FlowableBase):
    """Run tasks at the same time, at most ``concurrent`` at once (0: all)."""

    TYPE = "io.kestra.plugin.core.flow.Parallel"
    ALIASES = ("Parallel", "io.kestra.core.tasks.flows.Parallel")

    tasks: TaskList
    concurrent: Count = 0

    def child_lists(self) -> dict[str, list[TaskBase]]:  # noqa: D102
        return {"tasks": list(self.tasks), **super().child_lists()}


class If(FlowableBase):
    """Run ``then`` when the condition renders true, else ``else``."""

    TYPE = "io.kestra.plugin.core.flow.If"
    ALIASES = ("If", "io.kestra.core.tasks.flows.If")

    condition: Text | bool
    then: TaskList
    else_: list[Task] | None = Field(default=None, alias="else")

    def child_lists(self) -> dict[str, list[TaskBase]]:  # noqa: D102
        lists = {"then": list(self.then)}
        if self.else_:
            lists["else"] = list(self.else_)
        return {**lists, **super().child_lists()}


class Switch(FlowableBase):
    """Run the branch whose key equals the rendered ``value``."""

    TYPE = "io.kestra.plugin.core.flow.Switch"
    ALIASES = ("Switch", "io.kestra.core.tasks.flows.Switch")

    value: Text
    cases: dict[str, list[Task]] = Field(default_factory=dict)
    defaults: list[Task] | None = None

    def child_lists(self) -> dict[str, list[TaskBase]]:  # noqa: D102
        lists = {f"cases.{key}": list(tasks) for key, tasks in self.cases.items()}
        if self.defaults:
            lists["defaults"] = list(self.defaults)
        return {**lists, **super().child_lists()}


class ForEach(FlowableBase):
    """Run the tasks once per value, ``concurrencyLimit`` at once (0: all)."""

    TYPE = "io.kestra.plugin.core.flow.ForEach"
    ALIASES = ("ForEach", "io.kestra.core.tasks.flows.ForEach")

    values: Text | list[Any] | dict[str, Any]
    concurrencyLimit: Count = 1  # noqa: N815 - Kestra's field name
    tasks: TaskList

    def child_lists(self) -> dict[str, list[TaskBase]]:  # noqa: D102
        return {"tasks": list(self.tasks), **super().child_lists()}


class EachSequential(FlowableBase):
    """Run the tasks once per value, one value at a time (older ForEach)."""

    TYPE = "io.kestra.plugin.core.flow.EachSequential"
    ALIASES = ("EachSequential", "io.kestra.core.tasks.flows.EachSequential")

    value: Text | list[Any]
    tasks: TaskList

    def child_lists(self) -> dict[str, list[TaskBase]]:  # noqa: D102
        return {"tasks": list(self.tasks), **super().child_lists()}


class EachParallel(FlowableBase):
    """Run the tasks once per value, values in parallel (older ForEach)."""

    TYPE = "io.kestra.plugin.core.flow.EachParallel"
    ALIASES = ("EachParallel", "io.kestra.core.tasks.flows.EachParallel")

    value: Text | list[Any]
    concurrent: Count = 0
    tasks: TaskList

    def child_lists(self) -> dict[str, list[TaskBase]]:  # noqa: D102
        return {"tasks": list(self.tasks), **super().child_lists()}


class DagTask(StrictModel):
    """One node of a Dag: a task and the sibling ids it waits for."""

    task: Task
    dependsOn: list[str] = Field(default_factory=list)  # noqa: N815


class Dag(FlowableBase):
    """Run tasks as soon as the tasks they depend on have succeeded."""

    TYPE = "io.kestra.plugin.core.flow.Dag"
    ALIASES = ("Dag", "io.kestra.core.tasks.flows.Dag")

    tasks: Annotated[list[DagTask], Field(min_length=1)]
    concurrent: Count = 0

    def child_lists(self) -> dict[str, list[TaskBase]]:  # noqa: D102
        return {"tasks": [node.task for node in self.tasks], **super().child_lists()}


class Subflow(TaskBase):
    """Start an execution of another flow, optionally waiting for its end."""

    TYPE = "io.kestra.plugin.core.flow.Subflow"
    ALIASES = ("Subflow", "io.kestra.core.tasks.flows.Subflow")

    namespace: Text
    flowId: Text  # noqa: N815 - Kestra's field name
    revision: int | None = Field(default=None, ge=1)
    inputs: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, Any] | list[dict[str, Any]] | None = None
    wait: bool = True
    transmitFailed: bool = True  # noqa: N815
    inheritLabels: bool = False  # noqa: N815
    outputs: dict[str, Any] | None = None
    scheduleDate: Text | None = None  # noqa: N815


class Pause(FlowableBase):
    """Pause the execution until resumed, or until ``pauseDuration`` passes."""

    TYPE = "io.kestra.plugin.core.flow.Pause"
    ALIASES = ("Pause", "io.kestra.core.tasks.flows.Pause")

    delay: DynDuration | None = None
    pauseDuration: DynDuration | None = None  # noqa: N815
    behavior: Literal["RESUME", "WARN", "FAIL", "CANCEL"] = "RESUME"
    onResume: list[Input] | None = None  # noqa: N815
    # Deprecated in Kestra but still accepted: tasks run after the resume.
    tasks: list[Task] | None = None

    @field_validator("errors", "finally_", mode="before")
    @classmethod
    def _no_branches(cls, value: Any, info: ValidationInfo) -> Any:
        # The executor parks a Pause and ends it itself; it never runs these branches.
        if value is not None:
            name = "finally" if info.field_name == "finally_" else "errors"
            raise ValueError(
                f"{name} is not supported on a Pause: Flowplane does not run it there; "
                f"wrap the Pause in a Sequential and give the Sequential {name}"
            )
        return value

    @model_validator(mode="after")
    def _one_duration(self) -> Pause:
        if self.delay is not None and self.pauseDuration is not None:
            raise ValueError("give delay or pauseDuration, not both")
        return self

    def child_lists(self) -> dict[str, list[TaskBase]]:  # noqa: D102
        lists = {"tasks": list(self.tasks)} if self.tasks else {}
        return {**lists, **super().child_lists()}


class AllowFailure(FlowableBase):
    """Run tasks; a failure among them ends this task in WARNING."""

    TYPE = "io.kestra.plugin.core.flow.AllowFailure"
    ALIASES = ("AllowFailure", "io.kestra.core.tasks.flows.AllowFailure")

    tasks: TaskList

    def child_lists(self) -> dict[str, list[TaskBase]]:  # noqa: D102
        return {"tasks": list(self.tasks), **super().child_lists()}


class WorkingDirectoryCache(StrictModel):
    """Files kept between executions of a WorkingDirectory."""

    patterns: list[str]
    ttl: DynDuration | None = None


class WorkingDirectory(FlowableBase):
    """Run tasks in one shared directory, so files pass between them."""

    TYPE = "io.kestra.plugin.core.flow.WorkingDirectory"
    ALIASES = ("WorkingDirectory", "io.kestra.core.tasks.flows.WorkingDirectory")

    tasks: TaskList
    cache: WorkingDirectoryCache | None = None
    # Written into the shared folder before inputFiles, as a script task's are.
    namespaceFiles: NamespaceFiles | None = None  # noqa: N815
    inputFiles: dict[str, Text] | Text | None = None  # noqa: N815
    outputFiles: list[Text] | None = None  # noqa: N815

    def child_lists(self) -> dict[str, list[TaskBase]]:  # noqa: D102
        return {"tasks": list(self.tasks), **super().child_lists()}


class CheckFrequency(StrictModel):
    """How often and how long a WaitFor loop runs."""

    maxIterations: int = Field(default=100, ge=1)  # noqa: N815
    maxDuration: DynDuration = "PT1H"  # noqa: N815
    interval: DynDuration = "PT1S"


class WaitFor(FlowableBase):
    """Repeat tasks until ``condition`` renders true."""

    TYPE = "io.kestra.plugin.core.flow.WaitFor"
    # Kestra renamed WaitFor to LoopUntil and keeps WaitFor as its alias: one task type.
    ALIASES = ("WaitFor", "io.kestra.plugin.core.flow.LoopUntil", "LoopUntil")

    condition: Text
    tasks: TaskList
    checkFrequency: CheckFrequency = Field(default_factory=CheckFrequency)  # noqa: N815
    failOnMaxReached: DynBool = False  # noqa: N815

    def child_lists(self) -> dict[str, list[TaskBase]]:  # noqa: D102
        return {"tasks": list(self.tasks), **super().child_lists()}
