"""Helpers the integration families share: optional extras, refused properties, CLI tools.

``require_extra`` belongs in ``controlplane.plugins.api`` (every family with a
heavy client needs it); it lives here until that file gains it. Stored files
(an earlier task's ``uri``) are read and written through the run context's
``open_file`` and ``put_file``, which keep a flow inside its own execution's
files.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from controlplane.domain.tasktypes import scripts
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.plugins.scripts.tasks import ShellCommands, run_script


def require_extra(module: str, extra: str, task_type: str) -> ModuleType:
    """Import ``module`` of the optional extra ``extra``, or fail the task naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as missing:
        raise TaskFailedError(
            f"task type {task_type} needs the {extra!r} extra: pip install 'flowplane[{extra}]' "
            f"({missing})"
        ) from None


def refuse(values: Any, refused: Mapping[str, str]) -> Any:
    """Raise for Kestra properties this type does not honour, with the reason why.

    Used in ``model_validator(mode="before")``: the property is named in the
    message, so validation points at it with its file and line.
    """
    if isinstance(values, dict):
        for name, reason in refused.items():
            if name in values:
                raise ValueError(f"{name} is not supported: {reason}")
    return values


# --- command-line tools run through the script sandbox ---------------------------


def is_local_runner(task: scripts.ShellCommands) -> bool:
    """Whether the task runs on the worker (the Process runner), not in a container."""
    return task.taskRunner is None or isinstance(task.taskRunner, scripts.ProcessRunner)


def sandbox_path(context: RunContext, *prefix: Path) -> str:
    """The ``PATH`` a sandboxed script gets, with ``prefix`` directories first."""
    default = context.sandbox.environment(context.working_dir, {})["PATH"]
    return ":".join([*(str(p) for p in prefix), default])


def run_cli(
    task: ShellCommands,
    context: RunContext,
    *,
    env: Mapping[str, str] | None = None,
    path: tuple[Path, ...] = (),
    image: str | None = None,
) -> dict[str, Any]:
    """Run a CLI task's commands as ``shell.Commands`` does, in the same sandbox.

    ``env`` is added under the task's own ``env`` (the task wins), ``path``
    directories go first on ``PATH`` (the task's own ``PATH`` follows), and
    ``image`` is the container image when the task runs in a pod and names none.
    """
    merged = {**(env or {}), **task.env}
    if path and is_local_runner(task):
        tail = str(context.render(task.env["PATH"])) if "PATH" in task.env else None
        merged["PATH"] = ":".join([*(str(p) for p in path), tail or sandbox_path(context)])
    update: dict[str, Any] = {"env": merged}
    if image is not None and not is_local_runner(task) and task.containerImage is None:
        update["containerImage"] = image
    return run_script(task.model_copy(update=update), context)
