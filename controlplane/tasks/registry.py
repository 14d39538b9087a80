"""Which implementation runs each runnable task type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controlplane.domain.tasktypes import core, http, scripts
from controlplane.tasks import core as core_tasks
from controlplane.tasks import http as http_tasks
from controlplane.tasks import scripts as script_tasks
from controlplane.tasks.context import RunContext

Runnable = Callable[[Any, RunContext], dict[str, Any]]

RUNNABLES: dict[type, Runnable] = {
    core.Log: core_tasks.run_log,
    core.Return: core_tasks.run_return,
    core.Echo: core_tasks.run_echo,
    core.Fail: core_tasks.run_fail,
    core.Sleep: core_tasks.run_sleep,
    core.OutputValues: core_tasks.run_output_values,
    http.Request: http_tasks.run_request,
    scripts.ShellCommands: script_tasks.run_script,
    scripts.ShellScript: script_tasks.run_script,
    scripts.PythonCommands: script_tasks.run_script,
    scripts.PythonScript: script_tasks.run_script,
}
