"""Running a runnable task type: its attempts, retries, timeout and output checks.

``behavior: CREATE_NEW_EXECUTION`` retries the whole run instead: the task
fails, and the worker queues a new execution (``Executor.retry_as_new_execution``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from controlplane.domain.durations import parse_duration
from controlplane.domain.fields import State
from controlplane.domain.tasktypes import TaskBase
from controlplane.errors import EvaluationError
from controlplane.metrics import TASK_DURATION
from controlplane.plugins.api import StoppedSignal, TaskFailedError
from controlplane.services.sealing import contains_sealed
from controlplane.services.worker.boundary import PASS_THROUGH, describe_error
from controlplane.services.worker.context import TaskRunContext
from controlplane.services.worker.frames import Frame
from controlplane.services.worker.retry import RetryPolicy, delay_before, max_attempts
from controlplane.store.db import as_utc
from controlplane.store.tables import TaskRunRow

if TYPE_CHECKING:
    from controlplane.services.worker.executor import Executor


def run_attempts(
    executor: Executor, task: TaskBase, frame: Frame, row: TaskRunRow
) -> tuple[State, dict[str, Any]]:
    """Run ``task`` until an attempt succeeds or its retry policy gives up."""
    policy = executor.retry_policy(task)
    while True:
        deadline = None
        if task.timeout is not None:
            seconds = executor.seconds(task.timeout, task, frame, row, "timeout")
            deadline = time.time() + seconds
        context = TaskRunContext(executor, task, frame.within(deadline, task.id), row)
        started = time.monotonic()
        try:
            outputs = _attempt(task, context)
        except PASS_THROUGH:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is logged, then maybe retried
            TASK_DURATION.labels(task.type, State.FAILED.value).observe(time.monotonic() - started)
            error: Exception = exc
            if (
                context.timed_out()
                and not executor.should_stop()
                and "timed out" not in str(exc)  # a runner's own message is clearer
            ):
                error = TaskFailedError(f"timed out after {task.timeout}")
            executor.log(row, "ERROR", describe_error(task, error))
            if executor.should_stop():
                raise StoppedSignal from None
            delay = _retry_delay(executor, policy, task, frame, row)
            if delay is None:
                return State.FAILED, {}
            executor.sleep(min(delay, 30.0))
            row.attempt += 1
            executor.save(row)
        else:
            TASK_DURATION.labels(task.type, State.SUCCESS.value).observe(time.monotonic() - started)
            if row.attempt > 1 and policy is not None and policy.warningOnRetry:
                return State.WARNING, outputs
            return State.SUCCESS, outputs


def _attempt(task: TaskBase, context: TaskRunContext) -> dict[str, Any]:
    """One call of the task's ``run``, with the checks every output passes."""
    run: Callable[[TaskRunContext], Any] = getattr(task, "run")  # noqa: B009 - checked by the executor
    outputs = run(context)
    if not isinstance(outputs, dict):
        message = f"run() returned {type(outputs).__name__}, not a map of outputs"
        raise TaskFailedError(message)
    if context.timed_out():
        raise TaskFailedError(f"timed out after {task.timeout}")
    if contains_sealed(outputs):
        # Only the worker seals; a forged one would be opened for this run.
        raise TaskFailedError('outputs may not hold a {"sealed": …} value: that shape is reserved')
    if task.logToFile:
        outputs = {**outputs, "logFile": _write_log_file(task, context)}
    return outputs


def _write_log_file(task: TaskBase, context: TaskRunContext) -> str:
    """Write this task run's log lines to a file (Kestra's ``logToFile``); return its path.

    The lines are read back from the execution's log, so they are masked and
    filtered by ``logLevel`` exactly as the log shows them.
    """
    run_id = context.row.id
    lines = [
        line
        for line in context.execution_logs(context.execution.id, action="logToFile")
        if line.task_run_id == run_id
    ]
    path = context.working_dir.parent / "logs" / f"{task.id}-{run_id}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = [f"{line.timestamp.isoformat()} {line.level} {line.message}\n" for line in lines]
    path.write_text("".join(text), encoding="utf-8")
    return str(path)


def _retry_delay(
    executor: Executor, policy: RetryPolicy | None, task: TaskBase, frame: Frame, row: TaskRunRow
) -> float | None:
    """Seconds before the next attempt of a failed task, or None when it may not retry.

    ``maxAttempts`` and ``maxDuration`` (counted from the first attempt) bound
    the retries.
    """
    if policy is None or row.attempt >= max_attempts(policy):
        return None
    policy = _rendered_policy(executor, policy, task, frame, row)
    if policy.behavior == "CREATE_NEW_EXECUTION":
        executor.retry_as_new_execution = policy
        executor.log(row, "INFO", "retry behavior CREATE_NEW_EXECUTION: a new execution follows")
        return None
    delay = delay_before(policy, row.attempt)
    if policy.maxDuration is not None:
        limit = executor.seconds(policy.maxDuration, task, frame, row, "retry.maxDuration")
        if time.time() + delay - as_utc(row.started_at).timestamp() > limit:
            executor.log(row, "WARN", f"retry.maxDuration of {policy.maxDuration} reached")
            return None
    return delay


def _rendered_policy(
    executor: Executor, policy: RetryPolicy, task: TaskBase, frame: Frame, row: TaskRunRow
) -> RetryPolicy:
    """``policy`` with its templated durations rendered and checked."""
    updates: dict[str, str] = {}
    for name in ("interval", "minInterval", "maxInterval", "maxDuration"):
        value = getattr(policy, name, None)
        if isinstance(value, str) and "{" in value:
            updates[name] = str(executor.render(value, task, frame, row, f"retry.{name}"))
    for name, value in updates.items():
        try:
            parse_duration(value)
        except ValueError as exc:
            raise EvaluationError(f"task {task.id!r}: retry.{name}: {exc}") from None
    return policy.model_copy(update=updates) if updates else policy
