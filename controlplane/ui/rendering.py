"""Jinja2 templates and the filters they share; ``page`` renders one with the common context."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from controlplane.ui.highlight import diff_rows, highlight_yaml
from controlplane.ui.session import CSRF_FIELD, CSRF_HEADER, csrf_token

TEMPLATES = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES)

# States drawn as success, failure, waiting or running in badges and the timeline.
_STATE_CLASS = {
    "SUCCESS": "ok",
    "applied": "ok",
    "approved": "ok",
    "approve": "ok",
    "no_changes": "muted",
    "WARNING": "warn",
    "FAILED": "bad",
    "failed": "bad",
    "rejected": "bad",
    "reject": "bad",
    "KILLED": "bad",
    "KILLING": "bad",
    "CANCELLED": "muted",
    "superseded": "muted",
    "SKIPPED": "muted",
    "PAUSED": "wait",
    "pending": "wait",
    "CREATED": "wait",
    "QUEUED": "wait",
    "RUNNING": "run",
    "RETRYING": "run",
}


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def when(value: datetime | str | None) -> str:
    """A timestamp as ``2024-05-01 09:30:12 UTC``."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        return _utc(parsed).strftime("%Y-%m-%d %H:%M:%S UTC")
    return _utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(start: datetime | None, end: datetime | None) -> str:
    """The time between two instants, as ``1m 05s`` or ``350 ms``; running ones count to now."""
    if start is None:
        return "—"
    seconds = ((_utc(end) if end else datetime.now(UTC)) - _utc(start)).total_seconds()
    if seconds < 1:
        return f"{max(seconds, 0) * 1000:.0f} ms"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{seconds:.1f} s"


def pretty(value: Any) -> str:
    """A JSON value indented for reading."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def short(sha: str | None) -> str:
    """The first 12 characters of a hash or id."""
    return (sha or "")[:12]


def state_class(state: str | None) -> str:
    """The CSS modifier for a state or status badge."""
    return _STATE_CLASS.get(state or "", "muted")


def state_classes() -> dict[str, str]:
    """Every state's CSS modifier (the graph colours its nodes with them)."""
    return dict(_STATE_CLASS)


_LEVEL_RANK = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "WARNING": 3, "ERROR": 4}


def level_rank(level: str | None) -> int:
    """A log level's rank, so the level filter can hide lines below a threshold."""
    return _LEVEL_RANK.get((level or "").upper(), 2)


def query(params: dict[str, Any], **changes: Any) -> str:
    """A query string from ``params`` with ``changes`` applied; empty values are left out."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in ("", None)})


templates.env.filters.update(
    when=when,
    pretty=pretty,
    short=short,
    state_class=state_class,
    level_rank=level_rank,
    highlight_yaml=highlight_yaml,
    diff_rows=diff_rows,
)
templates.env.globals.update(
    duration=duration, query=query, CSRF_FIELD=CSRF_FIELD, CSRF_HEADER=CSRF_HEADER
)


def page(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> Response:
    """Render template ``name`` with the principal, CSRF token and base path every page needs."""
    base = str(request.scope.get("root_path", "")).rstrip("/")
    common = {
        "ui": base,
        "principal": getattr(request.state, "principal", None),
        "csrf": csrf_token(request),
        "htmx": request.headers.get("HX-Request") == "true",
    }
    return templates.TemplateResponse(
        request, name, {**common, **(context or {})}, status_code=status_code
    )
