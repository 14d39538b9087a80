"""Which implementation runs each runnable task type.

Flowable types are walked by the executor itself (``FLOWABLE_TYPES``); every
other registered type must have an entry in ``RUNNABLES``. A test walks the
type table and fails when a type has neither.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from controlplane.domain.tasktypes import core, flowable, http, scripts
from controlplane.tasks import core as core_tasks
from controlplane.tasks import execution as execution_tasks
from controlplane.tasks import http as http_tasks
from controlplane.tasks import kv as kv_tasks
from controlplane.tasks import scripts as script_tasks
from controlplane.tasks import storage as storage_tasks
from controlplane.tasks.context import RunContext

Runnable = Callable[[Any, RunContext], dict[str, Any]]


def with_log_file(implementation: Runnable) -> Runnable:
    """``implementation``, adding the ``logFile`` output when the task sets ``logToFile``."""

    @functools.wraps(implementation)
    def run(task: Any, context: RunContext) -> dict[str, Any]:
        outputs = implementation(task, context)
        if task.logToFile:
            outputs = {**outputs, "logFile": storage_tasks.write_log_file(task, context)}
        return outputs

    return run


_IMPLEMENTATIONS: dict[type, Runnable] = {
    core.Log: core_tasks.run_log,
    core.Return: core_tasks.run_return,
    core.Echo: core_tasks.run_echo,
    core.Fail: core_tasks.run_fail,
    core.Sleep: core_tasks.run_sleep,
    core.OutputValues: core_tasks.run_output_values,
    core.Labels: execution_tasks.run_labels,
    core.Resume: execution_tasks.run_resume,
    core.Fetch: execution_tasks.run_fetch,
    core.KvSet: kv_tasks.run_kv_set,
    core.KvGet: kv_tasks.run_kv_get,
    core.KvDelete: kv_tasks.run_kv_delete,
    core.StateGet: kv_tasks.run_state_get,
    core.StateSet: kv_tasks.run_state_set,
    core.StateDelete: kv_tasks.run_state_delete,
    core.LocalFiles: storage_tasks.run_local_files,
    http.Request: http_tasks.run_request,
    scripts.ShellCommands: script_tasks.run_script,
    scripts.ShellScript: script_tasks.run_script,
    scripts.PythonCommands: script_tasks.run_script,
    scripts.PythonScript: script_tasks.run_script,
}
RUNNABLES: dict[type, Runnable] = {
    model: with_log_file(implementation) for model, implementation in _IMPLEMENTATIONS.items()
}

# Types the executor runs itself: they order, repeat or wrap other tasks, or
# (Subflow, Pause) park the execution without holding a worker.
FLOWABLE_TYPES: frozenset[type] = frozenset(
    {
        flowable.Sequential,
        flowable.Parallel,
        flowable.If,
        flowable.Switch,
        flowable.ForEach,
        flowable.EachSequential,
        flowable.EachParallel,
        flowable.Dag,
        flowable.Subflow,
        flowable.Pause,
        flowable.AllowFailure,
        flowable.WorkingDirectory,
        flowable.WaitFor,
    }
)
