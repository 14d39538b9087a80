"""The interface a task implementation sees while it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from controlplane.runners.sandbox import Sandbox
from controlplane.store.tables import ExecutionRow


class TaskFailedError(Exception):
    """A task ended in failure; the message is logged and the run is FAILED."""


class RunContext(Protocol):
    """Rendering, logging, a working directory and the run's identity, provided by the executor."""

    @property
    def working_dir(self) -> Path:
        """A directory private to this task run (shared inside a WorkingDirectory)."""
        ...

    @property
    def engine(self) -> Engine:
        """The database, for tasks that act on executions or the key-value store."""
        ...

    @property
    def sandbox(self) -> Sandbox:
        """How script tasks of this run are isolated from the server."""
        ...

    @property
    def execution(self) -> ExecutionRow:
        """The running execution (its labels are updated in place by the Labels task)."""
        ...

    @property
    def taskrun_value(self) -> str | None:
        """The innermost loop value this task run carries, or None outside loops."""
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

    def is_secret(self, value: str) -> bool:
        """True when ``value`` contains a secret value this run has revealed."""
        ...

    def unseal(self, value: Any) -> Any:
        """``value`` with every value sealed to the server's key opened (dicts, lists walked).

        An opened string counts as a revealed secret from then on: masked in
        logs and outputs, and ``is_secret`` sees it.
        """
        ...
