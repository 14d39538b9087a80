"""The variables a template sees: flow, execution, inputs, outputs, task run, parents."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined

from controlplane.domain.tasktypes import TaskBase, scripts
from controlplane.services.worker.file_reader import FileReader
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
        # Kestra nests dotted input ids: `request.name` is `inputs.request.name`.
        "inputs": _nest_dotted(executor.inputs),
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
        "__read_file": FileReader(executor, row.id),
        **_output_dir(executor, task, frame, row),
    }


# The script tasks that collect the files a script writes to ``{{ outputDir }}``.
_SCRIPT_TASKS = (
    scripts.ShellCommands,
    scripts.ShellScript,
    scripts.PythonCommands,
    scripts.PythonScript,
)


def _output_dir(
    executor: Executor, task: TaskBase, frame: Frame, row: TaskRunRow
) -> dict[str, Any]:
    """Kestra's ``outputDir`` of a script task: a folder of its working directory.

    The Process and Docker runners see the working directory at the worker's
    own path (bind-mounted at that path in the container), so the absolute
    path is the one the script sees. A Kubernetes pod gets a copy of the
    files and returns none, so there the variable says so when used.
    """
    if not isinstance(task, _SCRIPT_TASKS):
        return {}
    if isinstance(task.taskRunner, scripts.KubernetesRunner):
        hint = (
            "outputDir is not available with the Kubernetes task runner: files a pod "
            "writes are not collected (use the Process or Docker runner)"
        )
        return {"outputDir": StrictUndefined(hint=hint)}
    working = frame.shared_dir or executor.work_dir / row.id / "work"
    # One folder per task run, so tasks sharing a WorkingDirectory keep theirs apart.
    return {"outputDir": str(working / f"output-dir-{row.id}")}


def _nest_dotted(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with each dotted key (``request.name``) also nested; the flat key stays.

    A key whose parent already holds a value that is not a map stays flat only.
    """
    nested: dict[str, Any] = dict(values)
    for key, value in values.items():
        if "." not in key:
            continue
        *parents, leaf = key.split(".")
        node: dict[str, Any] | None = nested
        for part in parents:
            if node is None:
                break
            child = node.get(part, {})
            # Copied, never changed in place: the maps are the execution's own values.
            node[part] = child = dict(child) if isinstance(child, dict) else child
            node = child if isinstance(child, dict) else None
        if node is not None:
            node.setdefault(leaf, value)
    return nested


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
