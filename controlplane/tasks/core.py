"""Core runnable tasks: Log, Return, Echo, Fail, Sleep, OutputValues."""

from __future__ import annotations

import time
from typing import Any

from controlplane.domain.durations import parse_duration
from controlplane.domain.tasktypes import core
from controlplane.tasks.context import RunContext, TaskFailedError


def run_log(task: core.Log, run: RunContext) -> dict[str, Any]:
    """Log each rendered message at the task's level."""
    messages = task.message if isinstance(task.message, list) else [task.message]
    for message in messages:
        run.log(task.level.value, str(run.render(message)))
    return {}


def run_return(task: core.Return, run: RunContext) -> dict[str, Any]:
    """Expose the rendered format as ``value``."""
    return {"value": run.render(task.format) if task.format is not None else None}


def run_echo(task: core.Echo, run: RunContext) -> dict[str, Any]:
    """Log the rendered format."""
    run.log(task.level.value, str(run.render(task.format)))
    return {}


def run_fail(task: core.Fail, run: RunContext) -> dict[str, Any]:
    """Fail, or only when the condition renders true."""
    if task.condition is not None:
        rendered = str(run.render(task.condition)).strip().lower()
        if rendered not in {"true", "1"}:
            return {}
    raise TaskFailedError(str(run.render(task.errorMessage)))


def run_sleep(task: core.Sleep, run: RunContext) -> dict[str, Any]:
    """Sleep for the duration, waking early when the run is stopped."""
    deadline = time.monotonic() + parse_duration(str(run.render(task.duration))).total_seconds()
    while time.monotonic() < deadline:
        if run.should_stop():
            raise TaskFailedError("stopped while sleeping")
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return {}


def run_output_values(task: core.OutputValues, run: RunContext) -> dict[str, Any]:
    """Expose the rendered values under ``values``."""
    return {"values": run.render(task.values)}
