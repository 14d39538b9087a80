"""Namespace scopes (glob patterns such as ``team-a.*``) as SQL conditions.

Filtering in the query, not after it, keeps pagination and totals right for a
token that sees only part of the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, or_

_ESCAPE = "\\"


def glob_to_like(pattern: str) -> str:
    """An fnmatch-style glob (``*``, ``?``) as a LIKE pattern, escaped with a backslash."""
    out = []
    for char in pattern:
        if char in "%_\\":
            out.append(_ESCAPE + char)
        elif char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        else:
            out.append(char)
    return "".join(out)


def scope_condition(column: Any, scopes: Sequence[str] | None) -> ColumnElement[bool] | None:
    """A condition matching ``column`` against any scope; None when nothing is filtered."""
    if scopes is None or "*" in scopes:
        return None
    return or_(*(column.like(glob_to_like(s), escape=_ESCAPE) for s in scopes))
