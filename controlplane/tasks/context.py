"""The interface a task implementation sees while it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class TaskFailedError(Exception):
    """A task ended in failure; the message is logged and the run is FAILED."""


class RunContext(Protocol):
    """Rendering, logging and a working directory, provided by the executor."""

    @property
    def working_dir(self) -> Path:
        """A directory private to this task run."""
        ...

    def render(self, value: Any) -> Any:
        """Render templates in ``value`` with the task's variables."""
        ...

    def log(self, level: str, message: str) -> None:
        """Write one log line for this task run (secrets masked)."""
        ...

    def should_stop(self) -> bool:
        """True once the run was killed or the worker lost its lease."""
        ...
