"""The flow: Kestra's top-level document, as a pydantic model."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator, model_validator

from controlplane.domain.fields import (
    FLOW_ID_PATTERN,
    MAX_ID_LENGTH,
    NAMESPACE_PATTERN,
    Concurrency,
    ConstantRetry,
    ExponentialRetry,
    Input,
    Output,
    PluginDefault,
    RandomRetry,
    StrictModel,
)
from controlplane.domain.tasktypes import Task, TaskBase, canonical_type
from controlplane.domain.tasktypes.base import labels_as_dict as labels_as_dict  # noqa: PLC0414
from controlplane.domain.triggers import Trigger

FlowRetry = ConstantRetry | ExponentialRetry | RandomRetry


class Flow(StrictModel):
    """A whole flow definition.

    ``revision`` may appear in sources exported from Kestra; the server owns
    revisions, so it is accepted and dropped by normalization.
    """

    id: Annotated[str, Field(pattern=FLOW_ID_PATTERN, max_length=MAX_ID_LENGTH)]
    namespace: Annotated[str, Field(pattern=NAMESPACE_PATTERN, max_length=150)]
    revision: int | None = Field(default=None, exclude=True)
    description: str | None = None
    labels: dict[str, Any] | None = None
    inputs: list[Input] | None = None
    variables: dict[str, Any] | None = None
    tasks: Annotated[list[Task], Field(min_length=1)]
    errors: list[Task] | None = None
    finally_: list[Task] | None = Field(default=None, alias="finally")
    triggers: list[Trigger] | None = None
    outputs: list[Output] | None = None
    concurrency: Concurrency | None = None
    retry: FlowRetry | None = None
    disabled: bool = False
    # Refused with an explanation rather than as an unknown key (see _no_sla).
    sla: Any = Field(default=None, exclude=True)
    pluginDefaults: list[PluginDefault] | None = Field(  # noqa: N815 - Kestra's field name
        default=None, validation_alias=AliasChoices("pluginDefaults", "taskDefaults")
    )

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pluginDefaults" in data and "taskDefaults" in data:
            raise ValueError("give pluginDefaults or its older name taskDefaults, not both")
        # Before field validation: pluginDefaults comes after tasks in the model,
        # so a field validator on tasks would never see it.
        return _defaults_applied(data)

    @field_validator("sla", mode="before")
    @classmethod
    def _no_sla(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError(
                "sla is not supported by Flowplane; use a task or flow timeout, "
                "or a Fail task with a condition"
            )
        return value

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        return labels_as_dict(value)

    def all_task_lists(self) -> dict[str, list[TaskBase]]:
        """The top-level task lists keyed by their YAML name."""
        lists: dict[str, list[TaskBase]] = {"tasks": list(self.tasks)}
        if self.errors:
            lists["errors"] = list(self.errors)
        if self.finally_:
            lists["finally"] = list(self.finally_)
        return lists


def _defaults_applied(data: Any) -> Any:
    """``data`` with its plugin defaults merged into every task list (before field validation)."""
    if not isinstance(data, dict):
        return data
    raw = data.get("pluginDefaults", data.get("taskDefaults"))
    if not isinstance(raw, list):
        return data
    try:
        defaults = [PluginDefault.model_validate(item) for item in raw]
    except ValueError:
        return data  # the field's own validation reports it
    merged = dict(data)
    for key in ("tasks", "errors", "finally"):
        if isinstance(merged.get(key), list):
            merged[key] = [_with_defaults(task, defaults) for task in merged[key]]
    return merged


def _matches(default_type: str, task_type: str) -> bool:
    full = canonical_type(default_type) or default_type
    return task_type == full or task_type.startswith(default_type.rstrip(".") + ".")


_NESTED_LISTS = ("tasks", "errors", "finally", "then", "else", "defaults")


def _with_defaults(task: Any, defaults: list[PluginDefault]) -> Any:
    """Return ``task`` with plugin defaults merged in, recursively into nested tasks.

    Non-forced values fill only missing keys; forced values win over the task's.
    """
    if not isinstance(task, dict):
        return task
    merged = dict(task)
    task_type = canonical_type(str(task.get("type", ""))) or str(task.get("type", ""))
    for default in defaults:
        if not _matches(default.type, task_type):
            continue
        for key, value in default.values.items():
            if default.forced or key not in merged:
                merged[key] = value
    for key in _NESTED_LISTS:
        if isinstance(merged.get(key), list):
            merged[key] = [
                {**node, "task": _with_defaults(node["task"], defaults)}
                if isinstance(node, dict) and "task" in node
                else _with_defaults(node, defaults)
                for node in merged[key]
            ]
    if isinstance(merged.get("cases"), dict):
        merged["cases"] = {
            case: [_with_defaults(t, defaults) for t in tasks] if isinstance(tasks, list) else tasks
            for case, tasks in merged["cases"].items()
        }
    return merged
