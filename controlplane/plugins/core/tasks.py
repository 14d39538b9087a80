"""Log, Return, Echo, Fail, Sleep, OutputValues."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

from controlplane.domain.durations import parse_duration
from controlplane.domain.tasktypes import core
from controlplane.plugins.api import RunContext, TaskFailedError


class Log(core.Log):
    """Write one or more messages to the execution's log."""

    SIDE_EFFECTS: ClassVar[bool] = False

    def run(self, context: RunContext) -> dict[str, Any]:
        """Log each rendered message at the task's level."""
        messages = self.message if isinstance(self.message, list) else [self.message]
        for message in messages:
            context.log(self.level.value, str(context.render(message)))
        return {}


class Return(core.Return):
    """Render ``format`` and expose it as the ``value`` output."""

    SIDE_EFFECTS: ClassVar[bool] = False
    OUTPUTS: ClassVar[Mapping[str, str]] = {"value": "the rendered format"}

    def run(self, context: RunContext) -> dict[str, Any]:
        """Expose the rendered format as ``value``."""
        return {"value": context.render(self.format) if self.format is not None else None}


class Echo(core.Echo):
    """Render ``format`` into the log (Kestra's older Log)."""

    SIDE_EFFECTS: ClassVar[bool] = False

    def run(self, context: RunContext) -> dict[str, Any]:
        """Log the rendered format."""
        context.log(self.level.value, str(context.render(self.format)))
        return {}


class Fail(core.Fail):
    """Fail the execution, or only when ``condition`` renders true."""

    SIDE_EFFECTS: ClassVar[bool] = False

    def run(self, context: RunContext) -> dict[str, Any]:
        """Fail, or only when the condition renders true."""
        if self.condition is not None:
            rendered = str(context.render(self.condition)).strip().lower()
            if rendered not in {"true", "1"}:
                return {}
        raise TaskFailedError(str(context.render(self.errorMessage)))


class Sleep(core.Sleep):
    """Wait for a duration."""

    def run(self, context: RunContext) -> dict[str, Any]:
        """Sleep for the duration, waking early when the run is stopped."""
        seconds = parse_duration(str(context.render(self.duration))).total_seconds()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if context.should_stop():
                raise TaskFailedError("stopped while sleeping")
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return {}


class OutputValues(core.OutputValues):
    """Expose rendered values as the ``values`` output."""

    SIDE_EFFECTS: ClassVar[bool] = False
    OUTPUTS: ClassVar[Mapping[str, str]] = {"values": "the rendered values, by name"}

    def run(self, context: RunContext) -> dict[str, Any]:
        """Expose the rendered values under ``values``."""
        return {"values": context.render(self.values)}
