"""Where a task sits in the walk: its loop values, parent run, shared directory and deadline.

A frame's ``key`` addresses the task run among the runs of the same task (one
per loop value and WaitFor iteration); it is stored as the run's ``value_key``
and read back by the replay memo.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

# Separates a task run's loop values from its WaitFor iterations in its key.
# json.dumps escapes every non-ASCII character, so no loop value contains it.
_SEPARATOR = re.compile(r"(?<!\\)/")
ITERATION_MARK = "\u21bb"


@dataclass(frozen=True)
class Frame:
    """Where a task sits: its loop values and parent task run."""

    values: tuple[tuple[str, Any], ...] = ()
    parent_id: str | None = None
    # Set inside a WorkingDirectory: its tasks share this directory.
    shared_dir: Path | None = None
    # WaitFor iterations this task sits in: each gets its own task runs, while
    # outputs stay addressed without them (the latest iteration wins).
    iterations: tuple[tuple[str, int], ...] = ()
    # Wall-clock end (time.time()) set by the nearest enclosing task ``timeout``,
    # and the task whose timeout it is.
    deadline: float | None = None
    deadline_of: str = ""

    @property
    def key(self) -> str:
        """The run's ``value_key``: loop values, then WaitFor iterations."""
        # "/" separates values: JSON-escape it inside them ("\/"), so output_path splits right.
        base = "/".join(
            json.dumps(v, sort_keys=True, default=str).replace("/", "\\/") for _, v in self.values
        )
        return base + "".join(f"{ITERATION_MARK}{task}:{n}" for task, n in self.iterations)

    @property
    def value(self) -> Any:
        """The innermost loop value, or None outside loops."""
        return self.values[-1][1] if self.values else None

    def child(self, parent_id: str, shared_dir: Path | None = None) -> Frame:
        """The frame of tasks nested in the task run ``parent_id``."""
        return replace(self, parent_id=parent_id, shared_dir=shared_dir or self.shared_dir)

    def with_value(self, task_id: str, value: Any) -> Frame:
        """The frame of one loop value of ``task_id``."""
        return replace(self, values=(*self.values, (task_id, value)))

    def in_iteration(self, task_id: str, iteration: int) -> Frame:
        """The frame of one WaitFor iteration of ``task_id``."""
        return replace(self, iterations=(*self.iterations, (task_id, iteration)))

    def within(self, deadline: float | None, task_id: str) -> Frame:
        """The same frame under a timeout ending at ``deadline`` (the nearer one wins)."""
        if deadline is None or (self.deadline is not None and self.deadline <= deadline):
            return self
        return replace(self, deadline=deadline, deadline_of=task_id)


def output_path(key: str) -> list[Any]:
    """The loop values of a run key, without its iterations (the latest iteration wins)."""
    base = key.split(ITERATION_MARK, 1)[0]
    # A JSON value never ends with "\", so an unescaped "/" is always a separator.
    return [json.loads(part) for part in _SEPARATOR.split(base)] if base else []
