"""Argo durations (``"20"``, ``"2m"``, ``"1h30m"``, ``"500ms"``) as ISO-8601 (``PT20S``)."""

from __future__ import annotations

import re
from datetime import timedelta

from controlplane.domain.durations import format_duration

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")


def iso_duration(text: str | float) -> str:
    """The ISO-8601 form of an Argo duration; a bare number counts seconds.

    Raises ``ValueError`` naming the accepted shapes.
    """
    raw = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        return format_duration(timedelta(seconds=float(raw)))
    seconds = 0.0
    position = 0
    while position < len(raw):
        match = _PART.match(raw, position)
        if match is None:
            raise ValueError(f"{raw!r} is not a duration such as 30, 30s, 2m, 1h30m or 500ms")
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not raw:
        raise ValueError("the duration is empty")
    return format_duration(timedelta(seconds=seconds))
