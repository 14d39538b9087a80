"""Server-side colouring: YAML sources through Pygments, unified diffs line by line.

Both return rows the templates lay out as tables with line numbers, so long
files stay readable and no JavaScript highlighter is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import YamlLexer

_FORMATTER = HtmlFormatter(nowrap=True)
_HUNK = re.compile(r"^@@ -(?P<old>\d+)(?:,\d+)? \+(?P<new>\d+)(?:,\d+)? @@")


def highlight_yaml(source: str) -> list[Markup]:
    """One safe HTML string per line of ``source``.

    Pygments closes its spans at each line end, so the output splits cleanly.
    """
    if not source:
        return []
    html = highlight(source, YamlLexer(), _FORMATTER)
    lines = html.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [Markup(line) for line in lines]  # noqa: S704 - Pygments escapes the source text


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One row of a rendered diff: its kind, old and new line numbers, and text."""

    kind: str  # "add", "del", "ctx", "hunk", "file" or "note"
    old: int | None
    new: int | None
    text: Markup


def diff_rows(diff: str) -> list[DiffRow]:
    """The rows of a unified diff, with line numbers tracked through each hunk."""
    rows: list[DiffRow] = []
    old = new = 0
    in_hunk = False  # before the first hunk, ---/+++ lines name the files
    for line in diff.split("\n"):
        if line.startswith(("--- ", "+++ ")) and not in_hunk:
            rows.append(DiffRow("file", None, None, escape(line)))
        elif match := _HUNK.match(line):
            old, new = int(match["old"]), int(match["new"])
            in_hunk = True
            rows.append(DiffRow("hunk", None, None, escape(line)))
        elif line.startswith("+"):
            rows.append(DiffRow("add", None, new, escape(line[1:])))
            new += 1
        elif line.startswith("-"):
            rows.append(DiffRow("del", old, None, escape(line[1:])))
            old += 1
        elif line.startswith("\\"):
            rows.append(DiffRow("note", None, None, escape(line)))
        elif line.startswith(" "):
            rows.append(DiffRow("ctx", old, new, escape(line[1:])))
            old += 1
            new += 1
    return rows
