"""``io.kestra.plugin.jdbc.postgresql.CopyIn``: load a file of the execution into a table."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.plugins.jdbc.connection import PostgresConnection
from controlplane.plugins.jdbc.query import database_error

# A table or column name as SQL reads it: plain (folded to lower case) or "quoted".
_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_TABLE = re.compile(rf"^{_NAME}(?:\.{_NAME}){{0,2}}$")
_COLUMN = re.compile(rf"^{_NAME}$")
_ESCAPES = {"\\t": "\t", "\\n": "\n", "\\r": "\r", "\\\\": "\\"}
_CHUNK = 1 << 16


def _refused(name: str, why: str) -> Any:
    def check(value: Any) -> Any:
        if value is not None:
            raise ValueError(f"{name} is not supported: {why}")
        return value

    return field_validator(name, mode="before")(check)


class CopyIn(TaskBase, PostgresConnection):
    """Copy a CSV, text or binary file of this execution into a PostgreSQL table."""

    TYPE: ClassVar[str] = "io.kestra.plugin.jdbc.postgresql.CopyIn"
    OUTPUTS: ClassVar[Mapping[str, str]] = {"rowCount": "the number of rows copied"}

    from_: str = Field(alias="from")
    table: str
    columns: list[str] | None = None
    format: Literal["TEXT", "CSV", "BINARY"] = "TEXT"
    freeze: bool | None = None
    delimiter: str | None = None
    nullString: str | None = None  # noqa: N815 - Kestra's field name
    header: bool | None = None
    quote: str | None = None
    escape: str | None = None
    forceNotNull: list[str] | None = None  # noqa: N815
    forceNull: list[str] | None = None  # noqa: N815
    encoding: str | None = None
    oids: bool | None = None
    forceQuote: list[str] | None = None  # noqa: N815
    socketTimeout: int | None = None  # noqa: N815

    _no_time_zone = _refused(
        "timeZoneId", "Kestra's CopyIn has none; write UTC offsets into the file's times"
    )
    _no_oids = _refused("oids", "PostgreSQL 12 removed COPY's OIDS option")
    _no_force_quote = _refused("forceQuote", "it applies to COPY TO only, and this copies in")
    _no_socket_timeout = _refused(
        "socketTimeout", "libpq has no read timeout; bound the task with its timeout instead"
    )

    @field_validator("format", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def run(self, context: RunContext) -> dict[str, Any]:
        """Stream the file into ``COPY table (columns) FROM STDIN WITH (...)``."""
        import psycopg  # noqa: PLC0415 - loaded when the task runs

        source = execution_file(context, str(context.render(self.from_)))
        statement = self.statement(context)
        context.log("DEBUG", f"Starting query: {statement}")
        with (
            self.connect(context.render, context.ensure_not_server_database) as connection,
            connection.cursor() as cursor,
        ):
            try:
                with cursor.copy(statement.encode()) as copy, source.open("rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        copy.write(chunk)
            except psycopg.Error as exc:
                raise database_error(exc) from None
            return {"rowCount": cursor.rowcount}

    def statement(self, context: RunContext) -> str:
        """The COPY statement, every name checked and every option quoted as a literal."""
        table = str(context.render(self.table)).strip()
        if not _TABLE.match(table):
            raise TaskFailedError(f"table {table!r} is not a table name")
        parts = ["COPY", table]
        if self.columns:
            parts.append("(" + ", ".join(self._names(context, self.columns, "columns")) + ")")
        parts.append("FROM STDIN")
        options = self._options(context)
        if options:
            parts.append("WITH (" + ", ".join(options) + ")")
        return " ".join(parts)

    def _options(self, context: RunContext) -> list[str]:
        options: list[str] = []
        if self.format != "TEXT":
            options.append(f"FORMAT {self.format}")
        if self.freeze is not None:
            options.append(f"FREEZE {'TRUE' if self.freeze else 'FALSE'}")
        for keyword, value in (
            ("DELIMITER", self.delimiter),
            ("QUOTE", self.quote),
            ("ESCAPE", self.escape),
        ):
            if value is not None:
                options.append(f"{keyword} {_literal(_character(context.render(value), keyword))}")
        if self.nullString is not None:
            options.append(f"NULL {_literal(str(context.render(self.nullString)))}")
        if self.header is not None:
            options.append(f"HEADER {'TRUE' if self.header else 'FALSE'}")
        for keyword, names in (
            ("FORCE_NOT_NULL", self.forceNotNull),
            ("FORCE_NULL", self.forceNull),
        ):
            if names:
                options.append(f"{keyword} ({', '.join(self._names(context, names, keyword))})")
        if self.encoding is not None:
            options.append(f"ENCODING {_literal(str(context.render(self.encoding)))}")
        return options

    @staticmethod
    def _names(context: RunContext, names: list[str], what: str) -> list[str]:
        rendered = [str(context.render(name)).strip() for name in names]
        for name in rendered:
            if not _COLUMN.match(name):
                raise TaskFailedError(f"{what}: {name!r} is not a column name")
        return rendered


def _character(value: Any, keyword: str) -> str:
    text = _ESCAPES.get(str(value), str(value))
    if len(text) != 1:
        raise TaskFailedError(f"{keyword.lower()} must be a single character, not {value!r}")
    return text


def _literal(text: str) -> str:
    # E'' so a tab or a backslash is spelled unambiguously.
    escaped = text.replace("\\", "\\\\").replace("'", "''").replace("\t", "\\t")
    return "E'" + escaped.replace("\n", "\\n").replace("\r", "\\r") + "'"


def execution_file(context: RunContext, reference: str) -> Path:
    """The file ``reference`` names, which must belong to this execution.

    Earlier tasks' file outputs (``outputs.<id>.uri``, ``uris``) are paths in
    the execution's directory; a relative path is read from the working
    directory. Anything outside the execution (a server file) is refused.
    """
    text = reference.strip()
    if text.startswith("kestra://"):
        raise TaskFailedError(
            "from: kestra:// URIs name Kestra's internal storage; give the file output of an "
            "earlier task instead (outputs.<id>.uri or outputs.<id>.uris['name'])"
        )
    text = text.removeprefix("file://")
    root = context.sandbox.work_dir_for(context.execution.id).resolve()
    path = Path(text) if Path(text).is_absolute() else context.working_dir / text
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise TaskFailedError(f"from: {reference!r} is not a file of this execution")
    if not resolved.is_file():
        raise TaskFailedError(f"from: {reference!r} does not exist")
    return resolved
