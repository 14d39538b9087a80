"""The plugin registry: every task type, read from the ``flowplane.plugins`` entry points.

Each entry point of the group names a module attribute holding task types: a
class, or a list or tuple of them (``controlplane.plugins.core:PLUGINS``).
Flowplane's own families register exactly as a third-party package does, so
the validator, the schemas, the API and the docs see one table.

The domain imports no plugin module by name: it reads the entry points, and
the plugin modules import the domain (docs/plugins.md, "Layers"). Loading
happens once, when this module is first imported; it then builds ``Task``,
the discriminated union every flow model nests.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Annotated, Any, Union

from pydantic import BaseModel, Discriminator, Tag

from controlplane.domain.fields import StrictModel
from controlplane.domain.polling import PollingTrigger, register_trigger
from controlplane.domain.tasktypes import flowable
from controlplane.domain.tasktypes.base import (
    TASK_ALIASES,
    TASK_TYPES,
    FlowableBase,
    TaskBase,
    canonical_type,
    register,
)

ENTRY_POINT_GROUP = "flowplane.plugins"
# The distribution whose entry points carry the first-party families.
FIRST_PARTY = "flowplane"


@dataclass(frozen=True)
class PluginOrigin:
    """Where a task type came from: its entry point and the package that declares it."""

    family: str
    distribution: str
    entry_point: str


PLUGIN_ORIGINS: dict[str, PluginOrigin] = {}


def _classes(loaded: Any, where: str) -> list[type[TaskBase | PollingTrigger]]:
    items = list(loaded) if isinstance(loaded, list | tuple) else [loaded]
    for item in items:
        # A family may declare polling trigger types beside its task types.
        if not (isinstance(item, type) and issubclass(item, TaskBase | PollingTrigger)):
            msg = f"entry point {where} yields {item!r}, not a TaskBase or PollingTrigger subclass"
            raise TypeError(msg)
    return items


def _entry_points() -> list[EntryPoint]:
    seen: set[tuple[str, str]] = set()
    found = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        # An editable install can list the same distribution twice.
        if (point.name, point.value) not in seen:
            seen.add((point.name, point.value))
            found.append(point)
    return found


def load_plugins() -> None:
    """Register every task type (and polling trigger type) the ``flowplane.plugins`` points declare.

    A plugin that fails to import or declares a clashing type name stops the
    load with an error naming the entry point: a flow validated without it
    would fail later, at run time, with a vaguer message.
    """
    points = _entry_points()
    if not any(p.dist is not None and p.dist.name == FIRST_PARTY for p in points):
        msg = (
            "flowplane's own task types are not registered: its entry points are missing "
            "(reinstall the package, e.g. `pip install -e .`)"
        )
        raise RuntimeError(msg)
    for point in points:
        where = f"{point.name} = {point.value}"
        try:
            loaded = point.load()
        except Exception as exc:
            msg = f"plugin entry point {where} failed to load: {exc}"
            raise RuntimeError(msg) from exc
        distribution = point.dist.name if point.dist is not None else "?"
        for cls in _classes(loaded, where):
            if issubclass(cls, PollingTrigger):
                register_trigger(cls)
            else:
                register(cls)
            PLUGIN_ORIGINS[cls.TYPE] = PluginOrigin(point.name, distribution, point.value)


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


def _nesting_models() -> list[type[BaseModel]]:
    """Every model whose fields may name ``Task``, each after the models it builds on."""
    models: list[type[BaseModel]] = [FlowableBase, flowable.DagTask]
    for cls in TASK_TYPES.values():
        # Bases first: a subclass inherits the fields its spec base resolved.
        models.extend(base for base in reversed(cls.__mro__) if issubclass(base, TaskBase))
    return list(dict.fromkeys(models))


def _rebuild(task_union: Any) -> None:
    """Resolve ``Task`` in every nesting model.

    A type subclassing a spec whose fields were still forward references
    re-reads them in its own module, so the names of every spec module are
    offered too (``TaskList`` of ``flowable``, say).
    """
    models = _nesting_models()
    names: dict[str, Any] = {}
    for model in models:
        names.update(vars(sys.modules[model.__module__]))
    names["Task"] = task_union
    for model in models:
        model.model_rebuild(_types_namespace=names)


load_plugins()
Task: Any = _build_union()
_rebuild(Task)


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
    "ENTRY_POINT_GROUP",
    "PLUGIN_ORIGINS",
    "TASK_ALIASES",
    "TASK_TYPES",
    "StrictModel",
    "Task",
    "TaskBase",
    "iter_tasks",
    "suggest_task_type",
]
