"""Count: how many runs flows or namespaces had in a period, kept where an expression holds."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import model_validator

from controlplane.domain.fields import State, StrictModel, Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError


class CountedFlow(StrictModel):
    """One flow whose runs are counted."""

    namespace: Text
    flowId: Text  # noqa: N815 - Kestra's field name


class Count(TaskBase):
    """Count runs of flows or namespaces in a period; keep the rows where ``expression`` holds."""

    TYPE = "io.kestra.plugin.core.execution.Count"
    ALIASES = ("execution.Count", "io.kestra.core.tasks.executions.Counts")
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "results": "the rows kept: namespace, flowId (null for a namespace) and count",
        "total": "the sum of the kept rows' counts",
    }

    flows: list[CountedFlow] | None = None
    namespaces: list[Text] | None = None
    states: list[State] | None = None
    startDate: Text  # noqa: N815 - Kestra's field name
    endDate: Text | None = None  # noqa: N815
    expression: Text

    @model_validator(mode="after")
    def _something_to_count(self) -> Count:
        if self.flows is None and self.namespaces is None:
            raise ValueError("Count needs flows or namespaces to count the executions of")
        return self

    def run(self, context: RunContext) -> dict[str, Any]:
        """Count runs created between the dates (end: now), in ``states`` when given."""
        flows = [
            (str(context.render(f.namespace)), str(context.render(f.flowId)))
            for f in self.flows or []
        ]
        namespaces = [str(context.render(ns)) for ns in self.namespaces or []]
        start = _date(context, self.startDate, "startDate")
        end = _date(context, self.endDate, "endDate") if self.endDate else datetime.now(UTC)
        rows = context.count_executions(
            flows,
            namespaces,
            states=[s.value for s in self.states or []],
            start=start,
            end=end,
        )
        results = [
            {"namespace": ns, "flowId": flow_id, "count": count}
            for ns, flow_id, count in rows
            if str(context.render_with(self.expression, {"count": count})).strip() == "true"
        ]
        context.log("DEBUG", f"{len(results)} of {len(rows)} counts match the expression")
        return {"results": results, "total": sum(r["count"] for r in results)}


def _date(context: RunContext, value: str | None, name: str) -> datetime:
    """A rendered ISO-8601 date and time; one without an offset is UTC."""
    text = str(context.render(value)).strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TaskFailedError(f"{name} {text!r} is not an ISO-8601 date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
