"""The run summary the ``*Execution`` notifications post: which run, how it ended, a link.

It describes the execution named by ``executionId`` (default: the current
one), read through the run context, so a Flow-triggered flow can report on the
run that triggered it, and an ``errors`` branch on its own run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from controlplane.domain.fields import StrictModel, Text
from controlplane.plugins.api import ExecutionInfo, RunContext
from controlplane.settings import Settings

# Where the UI shows one run (controlplane/ui/pages/executions.py, mounted at /ui).
_RUN_PAGE = "/ui/executions/{id}"
_TERMINAL = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"}


def public_url() -> str:
    """The server's public base URL: FLOWPLANE_PUBLIC_URL, else http://host:port."""
    settings = Settings()
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


@dataclass(frozen=True)
class RunSummary:
    """One execution as a notification describes it."""

    execution_id: str
    namespace: str
    flow_id: str
    state: str
    start: datetime | None
    duration: str
    link: str
    failed_task: str | None
    custom_message: str | None
    custom_fields: dict[str, Any]

    @property
    def headline(self) -> str:
        """``[namespace] flow ➛ STATE``."""
        return f"[{self.namespace}] {self.flow_id} ➛ {self.state}"

    @property
    def outcome(self) -> str:
        """``Failed on task `x` after 3s`` or ``Succeeded after 3s``."""
        if self.failed_task:
            return f"Failed on task `{self.failed_task}` after {self.duration}"
        if self.state in _TERMINAL - {"SUCCESS", "WARNING"}:
            return f"{self.state.capitalize()} after {self.duration}"
        return f"Succeeded after {self.duration}"

    def facts(self) -> list[tuple[str, str]]:
        """Namespace, flow, execution, state and the custom fields, in that order."""
        base = [
            ("Namespace", self.namespace),
            ("Flow", self.flow_id),
            ("Execution", self.execution_id),
            ("Status", self.state),
        ]
        return base + [(str(k), _text(v)) for k, v in self.custom_fields.items()]


class ExecutionNotification(StrictModel):
    """Kestra's ``ExecutionInterface`` properties, mixed into each ``*Execution`` task."""

    executionId: Text | None = None  # noqa: N815 - Kestra's field name
    customFields: dict[str, Any] = Field(default_factory=dict)  # noqa: N815
    customMessage: Text | None = None  # noqa: N815


def summarize(
    context: RunContext,
    execution_id: str | None,
    custom_fields: dict[str, Any],
    custom_message: str | None,
    *,
    task_id: str,
    action: str,
) -> RunSummary:
    """Read the named run (default: this one) and build its summary."""
    target = str(context.render(execution_id)) if execution_id else context.execution.id
    info = context.find_execution(target, None, None, paused=False, action=action)
    current = info.id == context.execution.id
    failed = _failed_task(info, task_id)
    state = info.state
    if current and state == "RUNNING" and failed:
        # An `errors` branch runs before the run is marked FAILED; that is where it goes.
        state = "FAILED"
    start = _start(context, info, current)
    end = info.ended_at or (datetime.now(UTC) if current else None)
    return RunSummary(
        execution_id=info.id,
        namespace=info.namespace,
        flow_id=info.flow_id,
        state=state,
        start=start,
        duration=_human(end - start) if start and end else "an unknown duration",
        link=public_url() + _RUN_PAGE.format(id=info.id),
        failed_task=failed,
        custom_message=str(context.render(custom_message)) if custom_message else None,
        custom_fields=context.render(custom_fields) if custom_fields else {},
    )


def _failed_task(info: ExecutionInfo, own_task: str) -> str | None:
    """The task whose run failed last (not this notification task itself)."""
    failed = [task for task in info.failed_tasks if task != own_task]
    return failed[-1] if failed else None


def _start(context: RunContext, info: ExecutionInfo, current: bool) -> datetime | None:
    """When the run started: from ExecutionInfo when it carries it, else this run's variables."""
    if info.started_at is not None:
        return info.started_at
    if not current:
        return None
    text = str(context.render("{{ execution.startDate }}"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _human(delta: Any) -> str:
    """A duration as ``1h 2m 3s`` (at least ``0s``)."""
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h"] if hours else []
    if hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return " ".join(parts)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)
