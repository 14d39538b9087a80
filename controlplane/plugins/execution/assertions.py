"""Assert: fail the task, naming every condition that renders false."""

from __future__ import annotations

from typing import Any

from controlplane.domain.fields import Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.errors import EvaluationError
from controlplane.plugins.api import RunContext, TaskFailedError

_FALSY = {"false", "0", "-0", ""}  # Kestra's TruthUtils


class Assert(TaskBase):
    """Check conditions against the execution's data; fail listing those that do not hold."""

    TYPE = "io.kestra.plugin.core.execution.Assert"
    ALIASES = ("Assert", "execution.Assert")

    conditions: list[Text]
    errorMessage: Text | None = None  # noqa: N815 - Kestra's field name

    def run(self, context: RunContext) -> dict[str, Any]:
        """Render each condition; one that renders false, or fails to render, fails the task."""
        failed: list[str] = []
        for condition in self.conditions:
            try:
                rendered = str(context.render(condition))
            except EvaluationError as exc:
                context.log("ERROR", f"assertion `{condition}` failed to render: {exc}")
                failed.append(condition)
                continue
            if rendered.strip() in _FALSY:
                context.log("ERROR", f"assertion `{condition}` failed")
                failed.append(condition)
        if failed:
            plural = "s" if len(failed) > 1 else ""
            message = f"{len(failed)} assertion{plural} failed: " + ", ".join(
                f"`{c}`" for c in failed
            )
            if self.errorMessage is not None:
                message += f"\n{context.render(self.errorMessage)}"
            raise TaskFailedError(message)
        context.log("INFO", f"{len(self.conditions)} assertions hold")
        return {}
