"""Command-line tools run through the script sandbox.

What TerraformCLI, AnsibleCLI and DbtCLI share with ``shell.Commands``: the
same sandbox, runners and outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from controlplane.domain.tasktypes import scripts
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.plugins.scripts.tasks import ShellCommands, run_script
from controlplane.runners.sandbox import SandboxError


def is_local_runner(task: scripts.ShellCommands) -> bool:
    """Whether the task runs on the worker (the Process runner), not in a container."""
    return task.taskRunner is None or isinstance(task.taskRunner, scripts.ProcessRunner)


def hand_over(context: RunContext, *paths: Path) -> None:
    """Create missing directories among ``paths`` and give each to the sandbox user.

    Files and directories the worker writes for a script belong to the server's
    user; the script runs as the sandbox user, who must be able to write there.
    """
    sandbox = context.sandbox
    try:
        mode = sandbox.effective_mode()
    except SandboxError as exc:
        raise TaskFailedError(str(exc)) from None
    for path in paths:
        if not path.exists():
            path.mkdir(parents=True)
        sandbox.give(path, mode)


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
