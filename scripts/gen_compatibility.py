"""Regenerate the task-type table of docs/compatibility.md from the plugin registry.

Run after adding or changing a task type: ``.venv/bin/python scripts/gen_compatibility.py``.
tests/test_compatibility_doc.py fails while the committed table differs.
"""

from __future__ import annotations

from pathlib import Path

from controlplane.domain.tasktypes.schema import with_compatibility_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "compatibility.md"


def main() -> None:
    """Rewrite the generated block in place."""
    DOC.write_text(with_compatibility_table(DOC.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main()
