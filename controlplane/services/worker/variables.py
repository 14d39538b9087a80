"""The variables a template sees: flow, execution, inputs, outputs, task run, parents."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from controlplane.domain.tasktypes import TaskBase
from controlplane.services.worker.frames import Frame
from controlplane.store.tables import TaskRunRow

if TYPE_CHECKING:
    from controlplane.services.worker.executor import Executor


def template_variables(
    executor: Executor, task: TaskBase, frame: Frame, row: TaskRunRow
) -> dict[str, Any]:
    """The variables a template of ``task`` sees."""
    # Tasks inside a loop carry its value, so the nearest parent's value is
    # the innermost loop value (Kestra's `parent.taskrun.value`).
    parents = [
        {"taskrun": {"value": _text(value)}, "task": {"id": task_id}}
        for task_id, value in reversed(frame.values)
    ]
    return {
        "flow": {
            "id": executor.flow.id,
            "namespace": executor.flow.namespace,
            "revision": executor.execution.flow_revision,
        },
        "execution": {
            "id": executor.execution.id,
            "startDate": executor.execution.created_at.isoformat(),
            "state": executor.execution.state,
        },
        "inputs": executor.inputs,
        "vars": executor.flow.variables or {},
        "labels": _nest_labels(executor.execution.labels),
        "trigger": executor.execution.trigger,
        "outputs": executor.outputs,
        "task": {"id": task.id, "type": task.type},
        "taskrun": {
            "id": row.id,
            "value": _text(frame.values[-1][1]) if frame.values else None,
            "startDate": row.started_at.isoformat(),
            "attemptsCount": row.attempt,
            "parentId": row.parent_id,
        },
        "parent": parents[0] if parents else None,
        "parents": parents,
        "envs": {},
        "globals": {},
        "__secret_lookup": executor.secrets.lookup,
    }


def _nest_labels(labels: dict[str, Any]) -> dict[str, Any]:
    """Labels as templates see them: a dotted key (`system.correlationId`) is also nested."""
    nested: dict[str, Any] = dict(labels)
    for key, value in labels.items():
        if "." not in key:
            continue
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node.setdefault(leaf, value)
    return nested


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
