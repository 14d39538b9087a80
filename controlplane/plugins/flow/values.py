"""Small readings of rendered values that several flowables share."""

from __future__ import annotations

import json
from typing import Any

from controlplane.domain.tasktypes.base import TaskBase
from controlplane.errors import EvaluationError
from controlplane.plugins.api import TaskFailedError


def truthy(value: Any) -> bool:
    """Kestra's reading of a rendered condition: "false", "0", "", "null" are false."""
    if isinstance(value, str):
        return value.strip().lower() not in {"", "false", "0", "none", "null"}
    return bool(value)


def positive_int(value: Any, name: str) -> int:
    """A rendered count or size as a whole number of at least 1; the task fails otherwise."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise TaskFailedError(f"{name} must be a whole number, not {value!r}") from None
    if number < 1:
        raise TaskFailedError(f"{name} must be at least 1, not {number}")
    return number


def preview(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def as_list(value: Any, task: TaskBase, name: str) -> list[Any]:
    """Loop values: a list, a map (its items), or a JSON text of either."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise EvaluationError(
                f"task {task.id!r}: {name}: rendered to {preview(text)}, not a list"
            ) from None
    if isinstance(value, dict):
        return list(value.items())
    if not isinstance(value, list):
        raise EvaluationError(f"task {task.id!r}: {name}: rendered to {preview(value)}, not a list")
    if None in value:
        # Kestra refuses a null loop value rather than running a task with none.
        raise EvaluationError(f"task {task.id!r}: {name}: item {value.index(None)} is null")
    return value
