"""What can go wrong talking to Flowplane, phrased for the person running Terraform.

``ApiError`` is the only exception the client raises; ``reporting`` turns it
into a diagnostic. ``Problem`` is one located finding in a flow source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One located problem the server found in a flow source."""

    message: str
    path: str = ""
    line: int | None = None
    column: int | None = None
    file: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Problem:
        """Build from the API's ``{file, line, column, path, message}``."""
        return cls(
            message=str(data.get("message", "")),
            path=str(data.get("path") or ""),
            line=data.get("line"),
            column=data.get("column"),
            file=data.get("file"),
        )

    def render(self) -> str:
        """``file:line:col: path: message``, the way the server and CLI print it.

        Without a file or a line (a request body, not a flow source), there is
        no place to name: just ``path: message``.
        """
        field_path = f"{self.path}: " if self.path else ""
        if self.file is None and self.line is None:
            return f"{field_path}{self.message}"
        where = [self.file or "<flow>"]
        if self.line is not None:
            where.append(str(self.line))
            if self.column is not None:
                where.append(str(self.column))
        return f"{':'.join(where)}: {field_path}{self.message}"


@dataclass
class ApiError(Exception):
    """A request that failed, phrased for the person running Terraform."""

    summary: str
    detail: str = ""
    status: int | None = None
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.summary}: {self.detail}" if self.detail else self.summary
