"""DeduplicateItems and FilterItems: keep some records of a file of one record per line.

Kestra's files of items hold one Ion value per line (``CsvToIon`` writes
them); JSON lines are Ion too. A line is read as JSON when it is JSON, else
with ``amazon.ion`` (the ``serdes`` extra). Each record's fields are template
variables of the task's expression, beside the usual ones: ``{{ email }}``.
Kept lines are written unchanged, one per line, into a ``.ion`` file.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from controlplane.domain.fields import Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.errors import EvaluationError
from controlplane.plugins.api import RunContext, TaskFailedError, require_extra
from controlplane.plugins.storage.lines import encode_line, open_lines

_FALSY = {"false", "0", "-0", ""}  # Kestra's TruthUtils


class DeduplicateItems(TaskBase):
    """Keep the last record of each key of a file of records."""

    TYPE = "io.kestra.plugin.core.storage.DeduplicateItems"
    ALIASES = ("storage.DeduplicateItems", "io.kestra.core.tasks.storages.DeduplicateItems")
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "uri": "the deduplicated file",
        "numKeys": "how many distinct keys were seen",
        "processedItemsTotal": "how many records were read",
        "droppedItemsTotal": "how many records were dropped",
    }

    from_: Text = Field(alias="from")
    expr: Text

    def run(self, context: RunContext) -> dict[str, Any]:
        """Two passes, as Kestra: find each key's last line, then write only those lines."""
        source = str(context.render(self.from_))
        last: dict[str, int] = {}
        with open_lines(context, source) as lines:
            for offset, (_line, item) in enumerate(_items(lines, self.TYPE)):
                last[str(context.render_with(self.expr, item))] = offset
        kept = set(last.values())
        processed = 0
        with (
            open_lines(context, source) as lines,
            tempfile.NamedTemporaryFile(dir=context.working_dir, delete=False) as out,
        ):
            for offset, line in enumerate(lines):
                processed += 1
                if offset in kept:
                    out.write(encode_line(line, "\n"))
        return {
            "uri": context.put_file(Path(out.name), f"{self.id}.ion"),
            "numKeys": len(last),
            "processedItemsTotal": processed,
            "droppedItemsTotal": processed - len(kept),
        }


class FilterItems(TaskBase):
    """Keep, or drop, the records of a file for which a condition renders true."""

    TYPE = "io.kestra.plugin.core.storage.FilterItems"
    ALIASES = ("storage.FilterItems", "io.kestra.core.tasks.storages.FilterItems")
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "uri": "the filtered file",
        "processedItemsTotal": "how many records were read",
        "droppedItemsTotal": "how many records were dropped",
    }

    from_: Text = Field(alias="from")
    filterCondition: Text  # noqa: N815 - Kestra's field name
    filterType: Literal["INCLUDE", "EXCLUDE"] = "INCLUDE"  # noqa: N815
    errorOrNullBehavior: Literal["FAIL", "INCLUDE", "EXCLUDE"] = "FAIL"  # noqa: N815

    def run(self, context: RunContext) -> dict[str, Any]:
        """Write the lines whose condition matches ``filterType``; count the rest."""
        processed = dropped = 0
        with (
            open_lines(context, str(context.render(self.from_))) as lines,
            tempfile.NamedTemporaryFile(dir=context.working_dir, delete=False) as out,
        ):
            for line, item in _items(lines, self.TYPE):
                processed += 1
                if self._keeps(context, item, line):
                    out.write(encode_line(line, "\n"))
                else:
                    dropped += 1
        return {
            "uri": context.put_file(Path(out.name), f"{self.id}.ion"),
            "processedItemsTotal": processed,
            "droppedItemsTotal": dropped,
        }

    def _keeps(self, context: RunContext, item: dict[str, Any], line: str) -> bool:
        try:
            rendered = str(context.render_with(self.filterCondition, item))
        except EvaluationError as exc:
            # Kestra: FAIL raises, INCLUDE or EXCLUDE decide the item whatever filterType says.
            if self.errorOrNullBehavior == "FAIL":
                raise TaskFailedError(f"filterCondition failed on item {line!r}: {exc}") from None
            return self.errorOrNullBehavior == "INCLUDE"
        matched = rendered.strip() not in _FALSY
        return matched == (self.filterType == "INCLUDE")


def _items(lines: Iterator[str], task_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each line, and the record it holds (JSON, else Ion)."""
    for number, line in enumerate(lines, start=1):
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            item = _plain(_ion(task_type).loads(line))
        if not isinstance(item, dict):
            raise TaskFailedError(f"line {number} holds {type(item).__name__}, not a record")
        yield line, item


def _ion(task_type: str) -> Any:
    """``amazon.ion.simpleion``, or the failure that names the extra it needs."""
    return require_extra("amazon.ion.simpleion", "serdes", task_type)


def _plain(value: Any) -> Any:
    """An Ion value as the plain values templates see (maps, lists, text, numbers)."""
    kind = getattr(getattr(value, "ion_type", None), "name", "")  # amazon.ion's IonType
    if kind == "NULL":
        return None
    if kind == "BOOL":
        return bool(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return _scalar(value)


def _scalar(value: Any) -> Any:
    """An Ion scalar as a plain one; timestamps as ISO-8601 text, blobs as text."""
    if isinstance(value, decimal.Decimal):
        return float(value) if value % 1 else int(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    for plain in (bool, str, int, float):
        if isinstance(value, plain):
            return plain(value)
    return value if value is None else str(value)
