"""Values made safe for both databases before they are written.

PostgreSQL refuses the NUL character in text and JSON (SQLite takes it), so a
log line or an output carrying one would fail its write on one database only.
NUL is written as the visible four-character escape backslash-x-0-0 instead, on both.
"""

from __future__ import annotations

from typing import Any

NUL_ESCAPE = "\\x00"


def escape_nul(value: Any) -> Any:
    """``value`` with every NUL character in its strings (and dict keys) escaped."""
    if isinstance(value, str):
        return value.replace("\x00", NUL_ESCAPE) if "\x00" in value else value
    if isinstance(value, dict):
        return {escape_nul(k): escape_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escape_nul(v) for v in value]
    return value
