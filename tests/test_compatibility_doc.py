"""docs/compatibility.md lists exactly the task types of the registry.

The table between the generated markers is rebuilt from the registry
(``scripts/gen_compatibility.py``); the hand-written per-type notes below it
must name every registered type and nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path

from controlplane.domain.tasktypes import TASK_TYPES
from controlplane.domain.tasktypes.schema import compatibility_table, with_compatibility_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "compatibility.md"
NOTES = "### What the worker does, per type"


def test_generated_table_is_current() -> None:
    # On failure: .venv/bin/python scripts/gen_compatibility.py
    text = DOC.read_text(encoding="utf-8")
    assert compatibility_table() in text
    assert with_compatibility_table(text) == text


def _noted_types(text: str) -> set[str]:
    section = text.split(NOTES, 1)[1].split("\n#", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        parts = re.findall(r"`([^`]+)`", first)
        full = parts[0]
        names.add(full)
        # "`io.kestra.plugin.core.state.Get` / `Set` / `Delete`" names siblings.
        names.update(full.rsplit(".", 1)[0] + "." + short for short in parts[1:])
    return names


def test_every_registered_type_has_notes_and_no_other() -> None:
    assert _noted_types(DOC.read_text(encoding="utf-8")) == set(TASK_TYPES)


def test_notes_check_can_fail() -> None:
    text = DOC.read_text(encoding="utf-8").replace(
        "| `io.kestra.plugin.core.log.Log` | `Log` |", ""
    )
    assert "io.kestra.plugin.core.log.Log" not in _noted_types(text)
