"""ISO-8601 durations as Kestra writes them (``PT1S``, ``P1D``, ``PT0.5S``, ``PT5m``)."""

from __future__ import annotations

import re
from datetime import timedelta

# Java's Duration.parse accepts days, hours, minutes and (fractional) seconds,
# case-insensitively, with an optional sign; Kestra inherits exactly that.
_DURATION = re.compile(
    r"^(?P<sign>[-+])?P(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$",
    re.IGNORECASE,
)


def parse_duration(text: str) -> timedelta:
    """Parse an ISO-8601 duration; raise ``ValueError`` naming the expected shape."""
    match = _DURATION.match(text.strip())
    if not match or text.strip().upper() in {"P", "PT"} or text.strip().upper().endswith("T"):
        raise ValueError(f"{text!r} is not an ISO-8601 duration such as PT30S, PT5M or P1D")
    parts = match.groupdict()
    seconds = float((parts["seconds"] or "0").replace(",", "."))
    value = timedelta(
        days=int(parts["days"] or 0),
        hours=int(parts["hours"] or 0),
        minutes=int(parts["minutes"] or 0),
        seconds=seconds,
    )
    return -value if parts["sign"] == "-" else value


def format_duration(value: timedelta) -> str:
    """Format a timedelta the way Java prints a Duration (``PT1H30M``, ``PT0.5S``)."""
    total = value.total_seconds()
    if total == 0:
        return "PT0S"
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    out = f"{sign}PT"
    if hours:
        out += f"{int(hours)}H"
    if minutes:
        out += f"{int(minutes)}M"
    if seconds:
        out += f"{seconds:g}S"
    return out
