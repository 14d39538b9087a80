"""The fault boundary's vocabulary: what passes through it, and how a failure reads.

Every evaluation and every task runs inside the boundary (``Executor.run_task``):
an error fails that task run with a message naming the task and the field.
Only the walk's control signals and database errors pass through it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from controlplane.domain import expressions
from controlplane.domain.tasktypes import TaskBase
from controlplane.errors import EvaluationError, FlowplaneError, StoreError
from controlplane.plugins.api import (
    CancelledSignal,
    PausedSignal,
    StoppedSignal,
    TaskFailedError,
)

# What the fault boundary lets through: the walk's control signals, and
# database failures (the run is left to its lease rather than failed on a guess).
PASS_THROUGH = (PausedSignal, StoppedSignal, CancelledSignal, SQLAlchemyError, StoreError)

LEVEL_RANK = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "WARNING": 3, "ERROR": 4}


def reason(exc: BaseException) -> str:
    """The message of ``exc``, with its class when the message alone says little."""
    text = str(exc).strip()
    if isinstance(exc, FlowplaneError | TaskFailedError | expressions.RenderError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def describe_error(task: TaskBase, exc: BaseException) -> str:
    """The log message for a task that failed with ``exc``.

    A task's own failure (a non-zero exit, a refused call) reads as it is: the
    log line already carries the task id. Anything unexpected names the task.
    """
    if isinstance(exc, TaskFailedError | EvaluationError):
        return reason(exc)
    return f"task {task.id!r}: {reason(exc)}"


def field_of(task: TaskBase, value: Any) -> str:
    """The name of ``task``'s property that holds ``value`` (for error messages)."""
    for name, held in task:
        if held is value:
            return name
        if isinstance(held, list):
            for index, item in enumerate(held):
                if item is value:
                    return f"{name}[{index}]"
        if isinstance(held, dict):
            for key, item in held.items():
                if item is value:
                    return f"{name}.{key}"
    return "a property"
