r"""Split: cut a stored file into several, by size, rows, partitions or a regex key.

As Kestra's ``StorageService.split``: the file is read as lines (``\n``,
``\r\n`` or ``\r`` end one), and each line is written followed by
``separator`` (``\n`` by default). ``bytes`` and ``rows`` start a new file once
the current one holds at least that many; ``partitions`` deals the lines out
round-robin; ``regexPattern`` groups lines by its first capture group (lines
that do not match are dropped). Empty parts are not kept.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import IO, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from controlplane.domain.fields import DynInt, Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.plugins.flow.values import positive_int
from controlplane.plugins.storage.lines import encode_line, open_lines

# Micronaut's readable sizes, as Kestra reads ``bytes``: 1024, 10KB, 10MB, 1GB.
_SIZE = re.compile(r"^\s*(\d+)\s*(?:([kKmMgG])[bB]?)?\s*$")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_WAYS = ("bytes", "partitions", "rows", "regexPattern")


def parse_size(text: str) -> int:
    """Bytes in a readable size (``10MB``); ValueError when it is not one."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 1024, 10KB or 10MB")
    return int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]


class Split(TaskBase):
    """Split a stored file into several, by bytes, rows, partitions or a regex key."""

    TYPE = "io.kestra.plugin.core.storage.Split"
    ALIASES = ("storage.Split", "io.kestra.core.tasks.storages.Split")
    OUTPUTS: ClassVar[Mapping[str, str]] = {"uris": "the stored parts, in order"}

    from_: Text = Field(alias="from")
    bytes: Text | None = None
    partitions: DynInt | None = None
    rows: DynInt | None = None
    regexPattern: Text | None = None  # noqa: N815 - Kestra's field name
    separator: Text = "\n"

    @field_validator("bytes")
    @classmethod
    def _readable_size(cls, value: str | None) -> str | None:
        if value is not None and "{" not in value:
            parse_size(value)
        return value

    @model_validator(mode="after")
    def _one_way(self) -> Split:
        # Kestra silently picks the first it finds; two given is a mistake to name.
        given = [name for name in _WAYS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"Split needs exactly one of bytes, partitions, rows or regexPattern"
                f" (got {', '.join(given) or 'none'})"
            )
        return self

    def run(self, context: RunContext) -> dict[str, Any]:
        """Read the file's lines and deal them into parts; store the non-empty ones."""
        source = str(context.render(self.from_))
        extension = PurePosixPath(source).suffix or ".tmp"
        separator = str(context.render(self.separator))
        parts = _Parts(context.working_dir)
        try:
            with open_lines(context, source) as lines:
                self._deal(context, lines, separator, parts)
        except BaseException:
            parts.discard()
            raise
        return {
            "uris": [
                context.put_file(path, f"{self.id}-{index:04d}{extension}")
                for index, path in enumerate(parts.kept(), start=1)
            ]
        }

    def _deal(
        self, context: RunContext, lines: Iterator[str], separator: str, parts: _Parts
    ) -> None:
        if self.regexPattern is not None:
            _by_key(lines, separator, parts, _pattern(str(context.render(self.regexPattern))))
        elif self.partitions is not None:
            count = positive_int(context.render(self.partitions), "partitions")
            _round_robin(lines, separator, parts, count)
        elif self.bytes is not None:
            try:
                limit = parse_size(str(context.render(self.bytes)))
            except ValueError as exc:
                raise TaskFailedError(f"bytes: {exc}") from None
            _by_threshold(lines, separator, parts, lambda size, _rows: size >= limit)
        else:
            rows = positive_int(context.render(self.rows), "rows")
            _by_threshold(lines, separator, parts, lambda _size, count: count >= rows)


class _Parts:
    """The parts being written, in the order they were opened."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: list[IO[bytes]] = []

    def new(self) -> IO[bytes]:
        handle = tempfile.NamedTemporaryFile(dir=self.directory, delete=False)  # noqa: SIM115
        self.files.append(handle)
        return handle

    def kept(self) -> list[Path]:
        """Close every part; the paths of the non-empty ones (the empty are deleted)."""
        paths = []
        for handle in self.files:
            handle.close()
            path = Path(handle.name)
            if path.stat().st_size > 0:
                paths.append(path)
            else:
                path.unlink()
        return paths

    def discard(self) -> None:
        for handle in self.files:
            handle.close()
            Path(handle.name).unlink(missing_ok=True)


def _by_threshold(
    lines: Iterator[str], separator: str, parts: _Parts, full: Callable[[int, int], bool]
) -> None:
    current: IO[bytes] | None = None
    size = count = 0
    for line in lines:
        if current is None or full(size, count):
            current, size, count = parts.new(), 0, 0
        data = encode_line(line, separator)
        current.write(data)
        size += len(data)
        count += 1


def _round_robin(lines: Iterator[str], separator: str, parts: _Parts, count: int) -> None:
    targets = [parts.new() for _ in range(count)]
    for index, line in enumerate(lines):
        targets[index % count].write(encode_line(line, separator))


def _by_key(lines: Iterator[str], separator: str, parts: _Parts, pattern: re.Pattern[str]) -> None:
    targets: dict[str | None, IO[bytes]] = {}  # a group that took no part keys None
    for line in lines:
        match = pattern.search(line)
        if match is None or pattern.groups == 0:
            continue
        key = match.group(1)
        if key not in targets:
            targets[key] = parts.new()
        targets[key].write(encode_line(line, separator))


def _pattern(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise TaskFailedError(f"regexPattern {text!r} is not a regular expression: {exc}") from None
