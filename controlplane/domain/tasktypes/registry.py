"""The discriminated union of every registered task model.

Importing this module imports every task family, so the table in ``base`` is
complete, then builds ``Task`` and resolves the forward references of models
that nest tasks.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Union

from pydantic import BaseModel, Discriminator, Tag

from controlplane.domain.fields import StrictModel
from controlplane.domain.tasktypes import core, flowable, http, scripts
from controlplane.domain.tasktypes.base import (
    TASK_ALIASES,
    TASK_TYPES,
    FlowableBase,
    TaskBase,
    canonical_type,
)

_FAMILIES = (core, flowable, http, scripts)


def _task_tag(value: Any) -> str | None:
    name = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(name, str):
        return None
    # An unknown name is returned as is, so pydantic reports it as an invalid
    # tag and ``suggest_task_type`` can propose the nearest known one.
    return canonical_type(name) or name


def _build_union() -> Any:
    members = tuple(Annotated[model, Tag(name)] for name, model in TASK_TYPES.items())
    return Annotated[Union[members], Discriminator(_task_tag)]  # noqa: UP007 - built at run time


Task: Any = _build_union()

_NESTING: list[type[BaseModel]] = [*TASK_TYPES.values(), FlowableBase, flowable.DagTask]
for _model in _NESTING:
    _model.model_rebuild(_types_namespace={"Task": Task})


def suggest_task_type(name: str) -> str | None:
    """The known type name closest to ``name``, for "did you mean" hints."""
    candidates = [*TASK_TYPES, *TASK_ALIASES]
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if match:
        return canonical_type(match[0])
    # Kestra's older package names (io.kestra.core.tasks.log.Log) share the class name.
    tail = name.rsplit(".", 1)[-1]
    same_tail = [full for full in TASK_TYPES if full.rsplit(".", 1)[-1] == tail]
    return same_tail[0] if len(same_tail) == 1 else None


def iter_tasks(tasks: list[TaskBase], path: tuple[str | int, ...]) -> Any:
    """Yield ``(path, task)`` for every task in ``tasks`` and below, depth first."""
    for index, task in enumerate(tasks):
        task_path = (*path, index)
        yield task_path, task
        for key, children in task.child_lists().items():
            child_path: tuple[str | int, ...] = (*task_path, *key.split(".", 1))
            if isinstance(task, flowable.Dag) and key == "tasks":
                for dag_index, node in enumerate(task.tasks):
                    node_path = (*task_path, "tasks", dag_index, "task")
                    yield node_path, node.task
                    yield from _iter_children(node.task, node_path)
                continue
            yield from iter_tasks(children, child_path)


def _iter_children(task: TaskBase, path: tuple[str | int, ...]) -> Any:
    for key, children in task.child_lists().items():
        yield from iter_tasks(children, (*path, *key.split(".", 1)))


__all__ = [
    "TASK_ALIASES",
    "TASK_TYPES",
    "BaseModel",
    "StrictModel",
    "Task",
    "TaskBase",
    "iter_tasks",
    "suggest_task_type",
]
