"""Kestra's serdes conversions between CSV, JSON and Ion: CsvToIon, IonToCsv, JsonToIon, IonToJson.

Names, properties and outputs follow ``io.kestra.plugin.serdes.*``. Ion is
the format Kestra's tasks hand records in: a text file with one Ion value
(a record) per line, read and written with ``amazon.ion`` (the ``serdes``
extra). Each task reads a stored file (``from``, an earlier task's ``uri``)
and stores its result, whose path it outputs as ``uri``.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import decimal
import io
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from controlplane.domain.fields import DynBool, DynInt, Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError, refuse, require_extra

_URI_OUTPUT: Mapping[str, str] = {"uri": "the converted file"}
# Kestra's parser limit on one field, 16 MiB; Python's csv keeps a process-wide one.
_MAX_FIELD = 16 * 1024 * 1024
_NULL = "\\N"  # how Kestra's CSV reader spells null
_TIME_FORMATS = "timestamps are written in ISO-8601; format them in the flow if needed"


class _Conversion(TaskBase):
    """A conversion reads one stored file and stores one."""

    OUTPUTS: ClassVar[Mapping[str, str]] = _URI_OUTPUT

    from_: Annotated[Text, Field(alias="from")]
    charset: Text = "UTF-8"

    @field_validator("charset")
    @classmethod
    def _known_charset(cls, value: str) -> str:
        if "{{" not in value:
            _codec(value)
        return value

    def encoding(self, context: RunContext) -> str:
        """The rendered charset, as a Python codec name."""
        try:
            return _codec(str(context.render(self.charset)))
        except ValueError as exc:
            raise TaskFailedError(f"charset: {exc}") from None

    @contextmanager
    def source(self, context: RunContext) -> Iterator[IO[str]]:
        """The ``from`` file as text in ``charset``."""
        with (
            context.open_file(str(context.render(self.from_))) as raw,
            io.TextIOWrapper(raw, encoding=self.encoding(context), newline="") as text,
        ):
            yield text

    def store(self, context: RunContext, write: Callable[[IO[bytes]], int], suffix: str) -> str:
        """Write the result with ``write`` (which returns the record count); store it."""
        with tempfile.NamedTemporaryFile(dir=context.working_dir, delete=False) as handle:
            count = write(handle)
        context.log("INFO", f"converted {count} records")
        return context.put_file(Path(handle.name), f"{self.id}{suffix}")


class CsvToIon(_Conversion):
    """Convert a CSV file into Ion records (one per row; a map by header, or a list)."""

    TYPE = "io.kestra.plugin.serdes.csv.CsvToIon"
    ALIASES = ("serdes.csv.CsvToIon", "io.kestra.plugin.serdes.csv.CsvReader")

    header: DynBool = True
    fieldSeparator: Text = ","  # noqa: N815 - Kestra's field names
    textDelimiter: Text = '"'  # noqa: N815
    skipEmptyRows: DynBool = False  # noqa: N815
    onBadLines: Literal["ERROR", "WARN", "SKIP"] = "ERROR"  # noqa: N815
    skipRows: DynInt = 0  # noqa: N815
    allowExtraCharsAfterClosingQuote: DynBool = False  # noqa: N815
    maxFieldSize: DynInt = _MAX_FIELD  # noqa: N815

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, values: Any) -> Any:
        return refuse(
            values,
            {
                "errorOnDifferentFieldCount": "Kestra deprecated it; use onBadLines",
                "maxBufferSize": "Python's CSV reader has no parser buffer; maxFieldSize bounds "
                "a field",
            },
        )

    @field_validator("fieldSeparator", "textDelimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if "{{" not in value and len(value) != 1:
            raise ValueError("must be exactly one character")
        return value

    def run(self, context: RunContext) -> dict[str, Any]:
        """Read the rows and write one Ion value per row."""
        ion = require_extra("amazon.ion.simpleion", "serdes", self.TYPE)
        options = _CsvOptions.of(self, context)
        with self.source(context) as text:
            rows = _csv_records(text, options, context)
            uri = self.store(context, lambda out: _write_ion(ion, rows, out), ".ion")
        return {"uri": uri}


class IonToCsv(_Conversion):
    """Convert Ion records into a CSV file (a header from the first record's keys)."""

    TYPE = "io.kestra.plugin.serdes.csv.IonToCsv"
    ALIASES = ("serdes.csv.IonToCsv", "io.kestra.plugin.serdes.csv.CsvWriter")

    header: DynBool = True
    fieldSeparator: Text = ","  # noqa: N815 - Kestra's field names
    textDelimiter: Text = '"'  # noqa: N815
    lineDelimiter: Text = "\n"  # noqa: N815
    alwaysDelimitText: DynBool = False  # noqa: N815
    quoteMode: Literal["ALWAYS", "REQUIRED", "NON_NUMERIC"] | None = None  # noqa: N815

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, values: Any) -> Any:
        return refuse(
            values,
            dict.fromkeys(
                (
                    "dateFormat",
                    "timeFormat",
                    "dateTimeFormat",
                    "zonedDateTimeFormat",
                    "timeZoneId",
                ),
                _TIME_FORMATS,
            ),
        )

    def run(self, context: RunContext) -> dict[str, Any]:
        """Write each record as a CSV row."""
        ion = require_extra("amazon.ion.simpleion", "serdes", self.TYPE)
        separator = str(context.render(self.fieldSeparator))
        quote = str(context.render(self.textDelimiter))
        ending = str(context.render(self.lineDelimiter))
        mode = self.quoteMode or (
            "ALWAYS" if _flag(context.render(self.alwaysDelimitText)) else "REQUIRED"
        )
        with_header = _flag(context.render(self.header))
        encoding = self.encoding(context)

        def write(out: IO[bytes]) -> int:
            count = 0
            with context.open_file(str(context.render(self.from_))) as raw:
                for value in _read_ion(ion, raw):
                    record = _plain(value, None)
                    if isinstance(record, list):
                        if with_header:
                            raise TaskFailedError("Invalid data of type List with header")
                        fields = record
                    elif isinstance(record, dict):
                        if with_header and count == 0:
                            line = _csv_line(list(record), separator, quote, mode)
                            out.write((line + ending).encode(encoding))
                        fields = list(record.values())
                    else:
                        raise TaskFailedError(f"record {count + 1} is not a map or a list")
                    line = _csv_line([_text(f) for f in fields], separator, quote, mode)
                    out.write((line + ending).encode(encoding))
                    count += 1
            return count

        return {"uri": self.store(context, write, ".csv")}


class JsonToIon(_Conversion):
    """Convert JSON (one value per line, or one document) into Ion records."""

    TYPE = "io.kestra.plugin.serdes.json.JsonToIon"
    ALIASES = ("serdes.json.JsonToIon", "io.kestra.plugin.serdes.json.JsonReader")

    newLine: DynBool = True  # noqa: N815 - Kestra's field name

    def run(self, context: RunContext) -> dict[str, Any]:
        """Write each JSON value (or each element of a top-level array) as an Ion value."""
        ion = require_extra("amazon.ion.simpleion", "serdes", self.TYPE)
        with self.source(context) as text:
            values = _json_values(text, _flag(context.render(self.newLine)))
            uri = self.store(context, lambda out: _write_ion(ion, values, out), ".ion")
        return {"uri": uri}


class IonToJson(_Conversion):
    """Convert Ion records into JSON lines (or one JSON array)."""

    TYPE = "io.kestra.plugin.serdes.json.IonToJson"
    ALIASES = ("serdes.json.IonToJson", "io.kestra.plugin.serdes.json.JsonWriter")

    newLine: DynBool = True  # noqa: N815 - Kestra's field names
    timeZoneId: Text | None = None  # noqa: N815

    def run(self, context: RunContext) -> dict[str, Any]:
        """Write each record as a JSON line, or all of them as one array."""
        ion = require_extra("amazon.ion.simpleion", "serdes", self.TYPE)
        lines = _flag(context.render(self.newLine))
        zone = _zone(str(context.render(self.timeZoneId))) if self.timeZoneId else None
        encoding = self.encoding(context)

        def write(out: IO[bytes]) -> int:
            count = 0
            with context.open_file(str(context.render(self.from_))) as raw:
                records = (_plain(value, zone) for value in _read_ion(ion, raw))
                if not lines:
                    everything = list(records)
                    out.write(json.dumps(everything, ensure_ascii=False).encode(encoding))
                    return len(everything)
                for record in records:
                    out.write((json.dumps(record, ensure_ascii=False) + "\n").encode(encoding))
                    count += 1
            return count

        return {"uri": self.store(context, write, ".jsonl" if lines else ".json")}


# --- CSV ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _CsvOptions:
    """CsvToIon's rendered properties."""

    header: bool
    separator: str
    quote: str
    skip_empty: bool
    on_bad: str
    skip_rows: int
    strict: bool
    max_field: int

    @classmethod
    def of(cls, task: CsvToIon, context: RunContext) -> _CsvOptions:
        return cls(
            header=_flag(context.render(task.header)),
            separator=str(context.render(task.fieldSeparator)),
            quote=str(context.render(task.textDelimiter)),
            skip_empty=_flag(context.render(task.skipEmptyRows)),
            on_bad=task.onBadLines,
            skip_rows=int(context.render(task.skipRows)),
            strict=not _flag(context.render(task.allowExtraCharsAfterClosingQuote)),
            max_field=int(context.render(task.maxFieldSize)),
        )


def _csv_records(text: IO[str], o: _CsvOptions, context: RunContext) -> Iterator[Any]:
    r"""The rows as Kestra's reader gives them: maps by header (or lists), ``\N`` as null."""
    csv.field_size_limit(max(csv.field_size_limit(), _MAX_FIELD))
    reader = csv.reader(text, delimiter=o.separator, quotechar=o.quote, strict=o.strict)
    headers: list[str] | None = None
    skipped = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            _bad_line(o.on_bad, f"line {reader.line_num}: {exc}", context)
            continue
        if not row and o.skip_empty:
            continue
        if o.header and headers is None:
            headers = row
            continue
        if skipped < o.skip_rows:
            skipped += 1
            continue
        if any(len(field) > o.max_field for field in row):
            raise TaskFailedError(f"line {reader.line_num}: a field is over {o.max_field} chars")
        fields = [None if field == _NULL else field for field in row]
        if headers is None:
            yield fields
        elif len(fields) != len(headers):
            _bad_line(
                o.on_bad,
                f"Bad line encountered (field count mismatch): Expected {len(headers)}, "
                f"got {len(fields)} fields.",
                context,
            )
        else:
            yield dict(zip(headers, fields, strict=True))


def _bad_line(policy: str, message: str, context: RunContext) -> None:
    if policy == "ERROR":
        raise TaskFailedError(message)
    if policy == "WARN":
        context.log("WARN", message)


def _csv_line(fields: list[str], separator: str, quote: str, mode: str) -> str:
    """One CSV row, quoting as Kestra's ``quoteMode`` says."""

    def quoted(value: str) -> str:
        if mode == "ALWAYS":
            needs = True
        elif mode == "NON_NUMERIC":
            needs = not _numeric(value)
        else:
            needs = any(c in value for c in (separator, quote, "\n", "\r"))
        return quote + value.replace(quote, quote * 2) + quote if needs else value

    return separator.join(quoted(str(f)) for f in fields)


def _numeric(value: str) -> bool:
    """Kestra's NON_NUMERIC test: an optional sign, digits, at most one point."""
    body = value[1:] if value[:1] in {"-", "+"} else value
    return bool(body) and body.count(".") <= 1 and body.replace(".", "").isdigit()


def _text(value: Any) -> str:
    """A record's field as CSV text: null empty, maps and lists as JSON."""
    plain = _plain(value, None)
    if plain is None:
        return ""
    if isinstance(plain, bool):
        return "true" if plain else "false"
    if isinstance(plain, dict | list):
        return json.dumps(plain, ensure_ascii=False)
    return str(plain)


# --- JSON and Ion -----------------------------------------------------------------


def _json_values(text: IO[str], per_line: bool) -> Iterator[Any]:
    """One value per non-empty line, or the document (a top-level array is unpacked)."""
    if per_line:
        for number, line in enumerate(text, start=1):
            if line.strip():
                try:
                    yield json.loads(line, parse_float=decimal.Decimal)
                except json.JSONDecodeError as exc:
                    raise TaskFailedError(f"line {number} is not JSON: {exc}") from None
        return
    try:
        document = json.load(text, parse_float=decimal.Decimal)
    except json.JSONDecodeError as exc:
        raise TaskFailedError(f"the file is not JSON: {exc}") from None
    yield from document if isinstance(document, list) else [document]


def _write_ion(ion: Any, values: Iterator[Any], out: IO[bytes]) -> int:
    """Write each value as one line of Ion text; return how many."""
    count = 0
    for value in values:
        out.write(ion.dumps(value, binary=False, omit_version_marker=True).encode() + b"\n")
        count += 1
    return count


def _read_ion(ion: Any, raw: IO[bytes]) -> Iterator[Any]:
    """The values of an Ion file (text or binary), one after the other."""
    try:
        yield from ion.load(raw, single_value=False, parse_eagerly=False)
    except (ValueError, TypeError, IndexError) as exc:
        raise TaskFailedError(f"the file is not Ion: {exc}") from None


def _plain(value: Any, zone: dt.tzinfo | None) -> Any:
    """An Ion value as JSON's: maps, lists, text, numbers; timestamps as ISO-8601 text."""
    kind = getattr(getattr(value, "ion_type", None), "name", "")
    if kind == "NULL" or value is None:
        return None
    if kind == "BOOL" or isinstance(value, bool):
        return bool(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, zone) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, zone) for v in value]
    return _scalar(value, zone)


def _scalar(value: Any, zone: dt.tzinfo | None) -> Any:
    """An Ion scalar as JSON's; a timestamp without offset takes ``zone`` when given."""
    if isinstance(value, dt.datetime):
        stamp = dt.datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=value.tzinfo or zone,
        )
        return stamp.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    for plain in (str, int, float):
        if isinstance(value, plain):
            return plain(value)
    return str(value)


def _codec(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ValueError(f"{name!r} is not a known charset") from None


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TaskFailedError(f"timeZoneId {name!r} is not a time zone") from None


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)
