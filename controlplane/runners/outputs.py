"""Kestra's convention for returning values from a script: a ``::{"outputs":{...}}::`` line."""

from __future__ import annotations

import json
import re
from typing import Any

_OUTPUT_LINE = re.compile(r"^::(\{.*\})::\s*$")


def parse_output_line(line: str) -> dict[str, Any] | None:
    """The outputs a ``::{"outputs":{...}}::`` line sets, or ``None`` for any other line."""
    match = _OUTPUT_LINE.match(line)
    if not match:
        return None
    try:
        outputs = json.loads(match.group(1)).get("outputs", {})
    except (json.JSONDecodeError, AttributeError):
        return None
    return outputs if isinstance(outputs, dict) else None
