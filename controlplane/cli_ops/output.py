"""How the operator commands print: a rich table for people, JSON or YAML for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

out = Console()
err = Console(stderr=True)


class Format(StrEnum):
    """The values of ``--output``."""

    table = "table"
    json = "json"
    yaml = "yaml"


OutputOption = Annotated[
    Format, typer.Option("--output", "-o", help="table for people; json or yaml for scripts")
]


def emit(data: Any, output: Format, human: Callable[[Any], None]) -> None:
    """Print ``data`` as JSON or YAML exactly as the API returned it, or call ``human``."""
    if output is Format.json:
        out.print_json(json.dumps(data))
    elif output is Format.yaml:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        out.print(text, markup=False, highlight=False, end="", soft_wrap=True)
    else:
        human(data)


def table(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> None:
    """A table of ``columns`` from each row; nested values are shown as compact JSON."""
    grid = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        grid.add_column(column.upper().replace("_", " "), overflow="fold")
    for row in rows:
        grid.add_row(*(_cell(row.get(column)) for column in columns))
    out.print(grid)


def details(row: dict[str, Any], fields: Sequence[str]) -> None:
    """``field: value`` lines for one object."""
    for name in fields:
        if name in row:
            out.print(Text(f"{name}: ", style="bold") + Text(_cell(row[name])))


_STATE_STYLES = {
    "SUCCESS": "green",
    "WARNING": "yellow",
    "FAILED": "red",
    "KILLED": "red",
    "CANCELLED": "red",
    "RUNNING": "cyan",
    "PAUSED": "magenta",
}


def state_text(state: str) -> Text:
    """An execution or task state, coloured."""
    return Text(state, style=_STATE_STYLES.get(state, ""))


def diff_text(text: str) -> Text:
    """A plan's text with additions green, removals red and changes yellow."""
    styled = Text()
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        if stripped.startswith(("+++", "---")):
            style = "bold"
        elif stripped.startswith("@@"):
            style = "cyan"
        elif stripped.startswith("+"):
            style = "green"
        elif stripped.startswith("-"):
            style = "red"
        elif stripped.startswith("~"):
            style = "yellow"
        else:
            style = ""
        styled.append(line, style=style)
    return styled


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)
