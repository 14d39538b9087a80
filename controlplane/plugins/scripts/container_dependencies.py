"""A Python task's ``dependencies`` in a Docker runner's container: pip, before the script.

Kestra installs a Python task's ``dependencies`` in the task's container before
the script runs. Here the container's own ``python3 -m pip`` installs them,
as the container's user, into ``/tmp/flowplane-dependencies`` (inside the
container, so neither the worker nor the working directory gets them, and
``outputFiles`` patterns never match them), which goes first on ``PYTHONPATH``.
The requirements are checked as on the worker (a name, extras, versions and a
marker: no URL, path or pip option) and shell-quoted. Nothing is cached: the
container is new on every run.
"""

from __future__ import annotations

import shlex

from controlplane.domain.tasktypes import scripts
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.runners.dependencies import DependencyError, normalise

# Inside the container: its /tmp, which every image's users may write.
TARGET = "/tmp/flowplane-dependencies"  # noqa: S108 - the container's /tmp, not the worker's


def install_lines(
    task: scripts.ShellCommands
    | scripts.ShellScript
    | scripts.PythonCommands
    | scripts.PythonScript,
    run: RunContext,
    python: str,
) -> list[str]:
    """Shell lines installing the task's rendered ``dependencies`` with ``python``'s pip.

    Empty for a shell task or a Python task without dependencies. A failed
    install ends the script with pip's exit code, whatever ``failFast`` says.
    """
    if not isinstance(task, scripts.PythonCommands | scripts.PythonScript):
        return []
    rendered = (str(run.render(d)).strip() for d in task.dependencies or [])
    try:
        requirements = sorted({normalise(r) for r in rendered if r})
    except DependencyError as exc:
        raise TaskFailedError(str(exc)) from None
    if not requirements:
        return []
    run.log(
        "INFO",
        f"dependencies: {', '.join(requirements)} are installed in the container with its "
        "pip (not cached between runs)",
    )
    target = shlex.quote(TARGET)
    pip = (
        f"{shlex.quote(python)} -m pip install --quiet --no-input --no-cache-dir "
        f"--disable-pip-version-check --target {target} -- "
        + " ".join(shlex.quote(r) for r in requirements)
    )
    return [
        f"{pip} || exit $?",
        f'export PYTHONPATH={target}"${{PYTHONPATH:+:$PYTHONPATH}}"',
    ]
