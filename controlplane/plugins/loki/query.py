"""LogQL queries against Grafana Loki's HTTP API (instant and range), with httpx."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
from pydantic import field_validator

from controlplane.domain.fields import DynInt, Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError

_OUTPUTS: Mapping[str, str] = {
    "logs": "one entry per returned value: timestamp, labels, and line (streams) or value",
    "resultType": "what Loki answered: streams, matrix or vector",
}


class LokiQuery(TaskBase):
    """Kestra's Loki connection and query properties, shared by Query and QueryRange."""

    OUTPUTS: ClassVar[Mapping[str, str]] = _OUTPUTS

    url: Text
    authToken: Text | None = None  # noqa: N815 - Kestra's field name
    tenantId: Text | None = None  # noqa: N815
    connectTimeout: DynInt = 30  # noqa: N815 - seconds
    readTimeout: DynInt = 60  # noqa: N815 - seconds
    query: Text
    limit: DynInt = 100
    direction: Text = "BACKWARD"

    @field_validator("direction")
    @classmethod
    def _direction(cls, value: str) -> str:
        if "{{" in value or value in {"FORWARD", "BACKWARD"}:
            return value
        raise ValueError("must be FORWARD or BACKWARD")

    def ask(self, context: RunContext, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET ``endpoint`` with the query; Kestra's outputs from Loki's answer."""
        direction = str(context.render(self.direction))
        if direction not in {"FORWARD", "BACKWARD"}:
            raise TaskFailedError(f"direction must be FORWARD or BACKWARD, not {direction!r}")
        query: dict[str, str | int] = {
            "query": str(context.render(self.query)),
            "limit": int(context.render(self.limit)),
            "direction": direction.lower(),
            **{k: str(context.render(v)) for k, v in params.items() if v is not None},
        }
        headers = {"Accept": "application/json"}
        if self.authToken is not None:
            headers["Authorization"] = f"Bearer {context.render(self.authToken)}"
        if self.tenantId is not None:
            headers["X-Scope-OrgID"] = str(context.render(self.tenantId))
        timeout = httpx.Timeout(
            float(context.render(self.readTimeout)),
            connect=float(context.render(self.connectTimeout)),
        )
        # Userinfo in `url` (https://user:password@host) is sent as basic auth by httpx.
        base = str(context.render(self.url)).rstrip("/")
        if self.authToken is not None and httpx.URL(base).userinfo:
            raise TaskFailedError("give authToken or a user and password in url, not both")
        try:
            response = httpx.get(base + endpoint, params=query, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            raise TaskFailedError(f"Loki request to {endpoint} failed: {exc}") from None
        if not 200 <= response.status_code < 300:  # noqa: PLR2004
            raise TaskFailedError(
                f"Loki answered {response.status_code} to {endpoint}: {response.text[:500]}"
            )
        try:
            data = response.json()["data"]
        except (ValueError, KeyError, TypeError):
            raise TaskFailedError(f"Loki's answer to {endpoint} has no data") from None
        entries = log_entries(data)
        context.log("INFO", f"Loki returned {len(entries)} entries ({data.get('resultType')})")
        return {"logs": entries, "resultType": data.get("resultType")}


class QueryRange(LokiQuery):
    """Run a LogQL query over a time range (``/loki/api/v1/query_range``)."""

    TYPE = "io.kestra.plugin.grafana.loki.QueryRange"

    start: Text | None = None
    end: Text | None = None
    step: Text | None = None
    since: Text | None = None
    interval: Text | None = None

    def run(self, context: RunContext) -> dict[str, Any]:
        """Query the range; Loki's defaults apply to what is not given (start: an hour ago)."""
        params = {
            "start": self.start,
            "end": self.end,
            "step": self.step,
            "since": self.since,
            "interval": self.interval,
        }
        return self.ask(context, "/loki/api/v1/query_range", params)


class Query(LokiQuery):
    """Run a LogQL query at one instant (``/loki/api/v1/query``)."""

    TYPE = "io.kestra.plugin.grafana.loki.Query"

    time: Text | None = None

    def run(self, context: RunContext) -> dict[str, Any]:
        """Query at ``time`` (default: now)."""
        return self.ask(context, "/loki/api/v1/query", {"time": self.time})


def log_entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Loki's ``result`` flattened as Kestra's ``logs``: one entry per value."""
    entries: list[dict[str, Any]] = []
    for result in data.get("result") or []:
        labels = result.get("stream") if "stream" in result else result.get("metric")
        if "value" in result:  # vector: one [timestamp, value]
            timestamp, value = result["value"][:2]
            entries.append({"timestamp": timestamp, "value": value, "labels": labels})
            continue
        key = "line" if "stream" in result else "value"  # streams carry log lines
        entries.extend(
            {"timestamp": item[0], key: item[1], "labels": labels}
            for item in result.get("values") or []
        )
    return entries
