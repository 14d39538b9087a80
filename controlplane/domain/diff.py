"""What differs between two versions: flows field by field and line by line, secrets by key.

These diffs serve the plan (``plan.py``). The field diff compares *normalized*
specs, so comments, quoting and key order never show up in it; the text diff
compares the sources, so a reviewer sees exactly what changed in the file.
Secrets are compared by opaque version hashes and reported by key only.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controlplane.domain.parse import Path, format_path

# namespace -> secret key -> opaque version hash (never the value).
SecretVersions = Mapping[str, Mapping[str, str]]


class FieldChangeKind(StrEnum):
    """How one field differs between the live flow and the desired one."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    # A list item (a task, an input, a trigger) kept its id but changed place.
    MOVED = "moved"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One difference between two normalized specs.

    ``path`` is a field path (``tasks[1].message``). Items of lists matched by
    id are named by their index in the *new* list, except removed items, which
    exist only in the old one and keep their old index. For ``MOVED``,
    ``before`` and ``after`` are the old and new index; otherwise they are the
    values (``None`` on the side where the field does not exist).
    """

    path: str
    kind: FieldChangeKind
    before: Any = None
    after: Any = None


def diff_specs(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """Every field difference from ``before`` to ``after``, in document order.

    Dict keys are compared in sorted order. Lists whose items all carry a
    distinct ``id`` (tasks, inputs, triggers, Dag nodes by their task's id) are
    matched by id, so inserting a task reports one added task rather than every
    later task as changed; other lists are compared index by index.
    """
    return tuple(_diff(before, after, ()))


def _diff(before: Any, after: Any, path: Path) -> Iterator[FieldChange]:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        yield from _diff_mappings(before, after, path)
    elif isinstance(before, list) and isinstance(after, list):
        yield from _diff_lists(before, after, path)
    # `1 == True` and `1 == 1.0` in Python, but not in YAML or JSON.
    elif before != after or type(before) is not type(after):
        yield FieldChange(format_path(path), FieldChangeKind.CHANGED, before, after)


def _diff_mappings(
    before: Mapping[str, Any], after: Mapping[str, Any], path: Path
) -> Iterator[FieldChange]:
    for key in sorted(before.keys() | after.keys(), key=str):
        where = (*path, key)
        if key not in after:
            yield FieldChange(format_path(where), FieldChangeKind.REMOVED, before[key], None)
        elif key not in before:
            yield FieldChange(format_path(where), FieldChangeKind.ADDED, None, after[key])
        else:
            yield from _diff(before[key], after[key], where)


def _diff_lists(before: list[Any], after: list[Any], path: Path) -> Iterator[FieldChange]:
    old_ids = _distinct_ids(before)
    new_ids = _distinct_ids(after)
    if old_ids is not None and new_ids is not None:
        yield from _diff_by_id(before, after, old_ids, new_ids, path)
        return
    for index in range(max(len(before), len(after))):
        where = (*path, index)
        if index >= len(before):
            yield FieldChange(format_path(where), FieldChangeKind.ADDED, None, after[index])
        elif index >= len(after):
            yield FieldChange(format_path(where), FieldChangeKind.REMOVED, before[index], None)
        else:
            yield from _diff(before[index], after[index], where)


def _diff_by_id(
    before: list[Any],
    after: list[Any],
    old_ids: list[str],
    new_ids: list[str],
    path: Path,
) -> Iterator[FieldChange]:
    old_index = {ident: index for index, ident in enumerate(old_ids)}
    new_set = set(new_ids)
    moved = _moved(
        [ident for ident in old_ids if ident in new_set],
        [ident for ident in new_ids if ident in old_index],
    )
    for index, ident in enumerate(new_ids):
        where = (*path, index)
        if ident not in old_index:
            yield FieldChange(format_path(where), FieldChangeKind.ADDED, None, after[index])
            continue
        previous = old_index[ident]
        if ident in moved:
            yield FieldChange(format_path(where), FieldChangeKind.MOVED, previous, index)
        yield from _diff(before[previous], after[index], where)
    for index, ident in enumerate(old_ids):
        if ident not in new_set:
            where = (*path, index)
            yield FieldChange(format_path(where), FieldChangeKind.REMOVED, before[index], None)


def _moved(old_order: list[str], new_order: list[str]) -> set[str]:
    """Ids present on both sides whose relative order changed.

    The items of a longest common subsequence stayed in place; the rest moved.
    Order matters (tasks run in it), so a pure reordering must not diff empty.
    """
    if old_order == new_order:  # the usual case, and cheap
        return set()
    matcher = difflib.SequenceMatcher(None, old_order, new_order, autojunk=False)
    kept = {
        ident
        for block in matcher.get_matching_blocks()
        for ident in new_order[block.b : block.b + block.size]
    }
    return set(new_order) - kept


def _distinct_ids(items: Sequence[Any]) -> list[str] | None:
    """The items' ids when every item has one and none repeats, else ``None``."""
    ids: list[str] = []
    for item in items:
        ident = _item_id(item)
        if ident is None:
            return None
        ids.append(ident)
    return ids if len(set(ids)) == len(ids) else None


def _item_id(item: Any) -> str | None:
    if not isinstance(item, Mapping):
        return None
    ident = item.get("id")
    if isinstance(ident, str):
        return ident
    # A Dag node is {task: {id: ...}, dependsOn: [...]}: its identity is its task's.
    task = item.get("task")
    if isinstance(task, Mapping) and isinstance(task.get("id"), str):
        return str(task["id"])
    return None


def unified_diff(before: str, after: str, *, before_label: str, after_label: str) -> str:
    """A unified diff of two texts with three lines of context; empty when equal."""
    if before == after:
        return ""
    return "".join(
        difflib.unified_diff(
            _lines(before), _lines(after), fromfile=before_label, tofile=after_label
        )
    )


def _lines(text: str) -> list[str]:
    """Lines ending in a newline; a missing final newline is marked as git marks it.

    ``str.splitlines`` would also split on form feeds and Unicode separators,
    which YAML keeps inside scalars, so only a line feed ends a line here.
    """
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
        return [part + "\n" for part in parts]
    return [part + "\n" for part in parts[:-1]] + [parts[-1] + "\n\\ No newline at end of file\n"]


class SecretAction(StrEnum):
    """What applying a plan does to one secret."""

    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class SecretChange:
    """One secret added, changed or removed; deliberately without any value or hash."""

    namespace: str
    key: str
    action: SecretAction


def diff_secrets(before: SecretVersions, after: SecretVersions) -> tuple[SecretChange, ...]:
    """Secret changes by (namespace, key), sorted; equal version hashes mean unchanged."""
    changes: list[SecretChange] = []
    for namespace in sorted(before.keys() | after.keys()):
        old, new = before.get(namespace, {}), after.get(namespace, {})
        for key in sorted(old.keys() | new.keys()):
            if key not in new:
                changes.append(SecretChange(namespace, key, SecretAction.REMOVE))
            elif key not in old:
                changes.append(SecretChange(namespace, key, SecretAction.ADD))
            elif old[key] != new[key]:
                changes.append(SecretChange(namespace, key, SecretAction.CHANGE))
    return tuple(changes)
