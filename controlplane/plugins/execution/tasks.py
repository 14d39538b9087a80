"""Labels, Resume and log.Fetch.

Labels acts only on its own run. Resume and log.Fetch may name a run of another
namespace only when that namespace lists this flow's namespace in
``allowed_namespaces``; Resume also needs a reviewer behind the running
revision, as resuming through the API does. The run context enforces both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from controlplane.domain.fields import LogLevel
from controlplane.domain.tasktypes import core
from controlplane.domain.tasktypes.base import labels_as_dict
from controlplane.plugins.api import ExecutionInfo, RunContext, TaskFailedError

_LEVELS = list(LogLevel)


class Labels(core.Labels):
    """Add or override labels on the running execution."""

    def run(self, context: RunContext) -> dict[str, Any]:
        """Add or override labels (a map, a key/value list, or JSON)."""
        rendered = context.render(self.labels)
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except json.JSONDecodeError:
                message = f"labels rendered to {rendered!r}, not a JSON map or list"
                raise TaskFailedError(message) from None
        if not isinstance(rendered, dict | list):
            raise TaskFailedError("labels must be a map, or a list of {key, value} pairs")
        try:
            labels = {str(k): _label_text(v) for k, v in labels_as_dict(rendered).items()}
        except ValueError as exc:
            raise TaskFailedError(f"labels: {exc}") from None
        # Labels are shown on every list and page and are not sealed: never a secret there.
        tainted = sorted(
            k for k, v in labels.items() if context.is_secret(k) or context.is_secret(v)
        )
        if tainted:
            named = ", ".join("******" if context.is_secret(k) else k for k in tainted)
            raise TaskFailedError(f"labels cannot carry secret values ({named})")
        context.set_labels(labels)
        context.log("INFO", f"labels set: {', '.join(sorted(labels))}")
        return {}


def _label_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else json.dumps(value, default=str)


class Resume(core.Resume):
    """Resume a paused execution (this one's parent by default)."""

    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "resumedExecution": "id, namespace and flowId of the resumed run"
    }

    def run(self, context: RunContext) -> dict[str, Any]:
        """Resume another paused execution; this flow is recorded as the actor."""
        target = _target(context, self.executionId, self.namespace, self.flowId, paused=True)
        if target.id == context.execution.id:
            raise TaskFailedError("an execution cannot resume itself; give executionId")
        context.resume_execution(target.id, context.render(self.inputs or {}))
        context.log("INFO", f"resumed execution {target.id}")
        return {
            "resumedExecution": {
                "id": target.id,
                "namespace": target.namespace,
                "flowId": target.flow_id,
            }
        }


class Fetch(core.Fetch):
    """Collect the log lines of an execution into a stored file."""

    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "uri": "the file of JSON lines",
        "size": "how many lines it holds",
    }

    def run(self, context: RunContext) -> dict[str, Any]:
        """Write an execution's log lines at ``level`` or above to a file."""
        target = _target(context, self.executionId, self.namespace, self.flowId, paused=False)
        wanted = set(self.tasksId or [])
        floor = _LEVELS.index(self.level)
        rows = [
            line
            for line in context.execution_logs(target.id, action="log.Fetch")
            if (not wanted or line.task_id in wanted)
            and line.level in LogLevel.__members__
            and _LEVELS.index(LogLevel(line.level)) >= floor
        ]
        path = context.working_dir / f"logs-{target.id}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for line in rows:
                record = {
                    "taskId": line.task_id,
                    "taskRunId": line.task_run_id,
                    "level": line.level,
                    "message": line.message,
                    "timestamp": line.timestamp.isoformat(),
                }
                handle.write(json.dumps(record) + "\n")
        return {"uri": str(path), "size": len(rows)}


def _target(
    context: RunContext,
    execution_id: str | None,
    namespace: str | None,
    flow_id: str | None,
    *,
    paused: bool,
) -> ExecutionInfo:
    """The run a task names, its properties rendered; the context checks the namespace."""
    return context.find_execution(
        str(context.render(execution_id)) if execution_id else None,
        str(context.render(namespace)) if namespace else None,
        str(context.render(flow_id)) if flow_id else None,
        paused=paused,
        action="Resume" if paused else "log.Fetch",
    )
