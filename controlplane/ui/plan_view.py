"""What the plan page shows beyond the stored plan: field rows with task ids, split diffs.

Field changes are stored with their path (``tasks[1].message``) and values;
the reviewer wants the task's id next to the path, and the values shown the
way they are written. The side-by-side view pairs the removed and added lines
of each block of a unified diff.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.ui.highlight import DiffRow, diff_rows

_STEP = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(\d+)\]")
_VALUE_CHARS = 400


@dataclass(frozen=True)
class FieldRow:
    """One field change as a table row: path, task id, kind, before and after as text."""

    path: str
    task_id: str | None
    kind: str
    before: str | None
    after: str | None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


def task_id_of(path: str, spec: Mapping[str, Any] | None, before: Any = None) -> str | None:
    """The id of the innermost task a field path points into, when the spec names one.

    A removed task exists only in the old spec; its own ``before`` value carries the id.
    """
    found: str | None = None
    node: Any = spec
    steps = _STEP.findall(path)
    for index, (key, position) in enumerate(steps):
        if node is None:
            break
        if key:
            node = node.get(key) if isinstance(node, Mapping) else None
        else:
            items = node if isinstance(node, list) else []
            at = int(position)
            node = items[at] if at < len(items) else None
            if isinstance(node, Mapping) and isinstance(node.get("id"), str):
                # A Dag node wraps its task: {task: {id: …}, dependsOn: […]}.
                found = node["id"]
            elif isinstance(node, Mapping) and isinstance(node.get("task"), Mapping):
                found = node["task"].get("id", found)
            elif node is None and index == len(steps) - 1 and isinstance(before, Mapping):
                found = before.get("id", found)
    return found


def field_rows(change: Mapping[str, Any]) -> list[FieldRow]:
    """The field changes of one flow change, ready for the table."""
    spec = change.get("spec")
    rows = []
    for item in change.get("fields") or ():
        path = str(item.get("path", ""))
        kind = str(item.get("kind", ""))
        before, after = item.get("before"), item.get("after")
        if kind == "moved":
            before, after = f"position {before}", f"position {after}"
        rows.append(
            FieldRow(path, task_id_of(path, spec, before), kind, _text(before), _text(after))
        )
    return rows


@dataclass(frozen=True)
class SplitRow:
    """One row of a side-by-side diff: the old line on the left, the new on the right."""

    kind: str  # "ctx", "change", "hunk" or "file"
    left: DiffRow | None
    right: DiffRow | None


def split_rows(diff: str) -> list[SplitRow]:
    """A unified diff as side-by-side rows; removed and added runs are paired in order."""
    rows: list[SplitRow] = []
    removed: list[DiffRow] = []
    added: list[DiffRow] = []

    def flush() -> None:
        for index in range(max(len(removed), len(added))):
            left = removed[index] if index < len(removed) else None
            right = added[index] if index < len(added) else None
            rows.append(SplitRow("change", left, right))
        removed.clear()
        added.clear()

    for row in diff_rows(diff):
        if row.kind == "del":
            if added:  # a removal after additions starts a new block
                flush()
            removed.append(row)
        elif row.kind == "add":
            added.append(row)
        else:
            flush()
            if row.kind == "ctx":
                rows.append(SplitRow("ctx", row, row))
            elif row.kind in {"hunk", "file"}:
                rows.append(SplitRow(row.kind, row, None))
    flush()
    return rows


def approval_names(approvals: Sequence[Any]) -> list[str]:
    """Who approved so far, in order (for "1 of 2: rita")."""
    return [a.actor for a in approvals if a.decision == "approve"]
