"""Kestra's DuckDB tasks: ``io.kestra.plugin.jdbc.duckdb.Query`` and ``Queries``.

DuckDB runs inside the worker (the ``duckdb`` extra), so its SQL is held to one
directory: each task run gets a fresh private directory, where ``inputFiles``
are written and ``outputFiles`` are made, and the connection is locked to it
(``enable_external_access=false``, ``allowed_directories``, no extension
installs, ``lock_configuration``), so a query cannot read or write any other
file of the worker, nor call ``getenv``. ``{{ workingDir }}`` and
``{{ outputFiles.<name> }}`` render to paths in that directory, as in Kestra;
files are named by those absolute paths (DuckDB checks a relative name before
resolving it, so ``read_csv('in.csv')`` is refused where Kestra reads it).

Outputs are Kestra's: ``row`` (``FETCH_ONE``), ``rows`` (``FETCH``), ``uri``
(``STORE``: an Ion text file, one row per line) and ``size``, plus
``outputFiles`` and ``databaseUri``; ``Queries`` gives one such map per
statement that returns rows, as ``outputs``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import model_validator

from controlplane.domain.fields import DynBool, DynInt, Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError, refuse, require_extra

_PREFIX = "io.kestra.plugin.jdbc.duckdb."
_MEMORY_URLS = {"jdbc:duckdb:", "jdbc:duckdb::memory:"}
_FETCH = Literal["NONE", "FETCH", "FETCH_ONE", "STORE"]
_RESULT_OUTPUTS = {
    "row": "FETCH_ONE: the first row, by column",
    "rows": "FETCH: every row, by column",
    "uri": "STORE: a stored Ion file, one row per line",
    "size": "how many rows were fetched or stored",
}


class _DuckDb(TaskBase):
    """What Query and Queries share (Kestra's JDBC query and DuckDB interfaces)."""

    url: Text = "jdbc:duckdb:"
    sql: Text
    inputFiles: dict[str, Text] | None = None  # noqa: N815 - Kestra's field names
    outputFiles: list[Text] | None = None  # noqa: N815
    databaseUri: Text | None = None  # noqa: N815
    outputDbFile: DynBool = False  # noqa: N815
    fetchType: _FETCH = "NONE"  # noqa: N815
    fetchSize: DynInt = 10000  # noqa: N815
    timeZoneId: Text | None = None  # noqa: N815

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, values: Any) -> Any:
        refuse(
            values,
            {
                "communityExtensions": "extensions are not installed: queries run without "
                "network access and only inside their own directory",
                "username": "DuckDB has no users",
                "password": "DuckDB has no users",
                "parameters": "render values into the SQL with {{ }} instead",
            },
        )
        url = values.get("url") if isinstance(values, dict) else None
        if isinstance(url, str) and "{{" not in url and url not in _MEMORY_URLS:
            raise ValueError(
                f"url {url!r} is not supported: a database file on the worker lies outside "
                "the task's directory; use jdbc:duckdb: with databaseUri to load a stored "
                "database and outputDbFile to keep it"
            )
        return values

    def connect(self, context: RunContext, directory: Path) -> tuple[Any, Path]:
        """A DuckDB connection on a database file in ``directory``, locked to it."""
        duckdb = require_extra("duckdb", "duckdb", self.TYPE)
        url = str(context.render(self.url))
        if url not in _MEMORY_URLS:
            raise TaskFailedError(f"url {url!r} is not supported (only jdbc:duckdb:)")
        database = directory / f"{uuid.uuid4().hex}.db"
        if self.databaseUri is not None:
            uri = str(context.render(self.databaseUri))
            with context.open_file(uri) as source, database.open("wb") as target:
                shutil.copyfileobj(source, target)
        connection = duckdb.connect(
            str(database),
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        )
        # The order matters: the directory settings before access is shut, the lock last.
        connection.execute("SET allowed_directories = ?", [[f"{directory}/"]])
        connection.execute("SET file_search_path = ?", [str(directory)])
        memory = context.sandbox.memory_bytes
        if memory is not None:
            connection.execute(f"SET memory_limit = '{memory // (1024 * 1024)}MB'")
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
        return connection, database

    def prepare(self, context: RunContext, directory: Path) -> dict[str, str]:
        """Write inputFiles, name outputFiles; the ``outputFiles`` paths by name."""
        for name, content in (self.inputFiles or {}).items():
            target = (directory / name).resolve()
            if not target.is_relative_to(directory):
                raise TaskFailedError(f"input file {name!r} points outside the working directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            value = str(context.render(_with_dirs(content, directory, {})))
            if _names_a_file(value):
                # Kestra copies an internal-storage URI's content: here a stored file's path.
                with context.open_file(value) as source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
            else:
                target.write_text(value, encoding="utf-8")
        outputs: dict[str, str] = {}
        for raw in self.outputFiles or []:
            name = str(context.render(raw))
            if "/" in name or name in {".", ".."}:
                raise TaskFailedError(f"outputFiles name {name!r} must be a plain file name")
            outputs[name] = str(directory / f"{uuid.uuid4().hex}-{name}")
        return outputs

    def render_sql(self, context: RunContext, directory: Path, files: dict[str, str]) -> str:
        """The SQL with ``workingDir`` and ``outputFiles.<name>`` resolved, then rendered."""
        return str(context.render(_with_dirs(self.sql, directory, files)))

    def finish(self, context: RunContext, database: Path, files: dict[str, str]) -> dict[str, Any]:
        """Store the output files (and the database when asked); their URIs."""
        result: dict[str, Any] = {}
        stored = {}
        for name, path in files.items():
            if not Path(path).is_file():
                raise TaskFailedError(f"the SQL did not write output file {name!r}")
            stored[name] = context.put_file(Path(path), name)
        if stored:
            result["outputFiles"] = stored
        if _flag(context.render(self.outputDbFile)):
            result["databaseUri"] = context.put_file(database, f"{self.id}.db")
        return result

    def fetch(self, context: RunContext, cursor: Any, name: str) -> dict[str, Any]:
        """The result of the statement just run (one that returns rows), as ``fetchType`` asks."""
        if self.fetchType == "NONE":
            return {}
        columns = [column[0] for column in cursor.description]
        zone = _zone(str(context.render(self.timeZoneId))) if self.timeZoneId else None
        batch = int(context.render(self.fetchSize))
        if self.fetchType == "FETCH_ONE":
            first = cursor.fetchone()
            row = _row(columns, first, zone) if first is not None else None
            return {"row": row, "size": 1 if first is not None else 0}
        if self.fetchType == "FETCH":
            rows = [_row(columns, r, zone) for r in _batches(cursor, batch)]
            return {"rows": rows, "size": len(rows)}
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=context.working_dir, delete=False
        ) as handle:
            size = 0
            for values in _batches(cursor, batch):
                # A JSON value is an Ion text value: the file reads as Ion, one row per line.
                handle.write(json.dumps(_row(columns, values, zone)) + "\n")
                size += 1
        return {"uri": context.put_file(Path(handle.name), f"{name}.ion"), "size": size}

    def execute(self, context: RunContext, run: Any) -> dict[str, Any]:
        """Prepare the directory, connect, ``run(connection, sql)``, store the files."""
        directory = Path(tempfile.mkdtemp(prefix=".duckdb-", dir=context.working_dir)).resolve()
        try:
            files = self.prepare(context, directory)
            sql = self.render_sql(context, directory, files)
            connection, database = self.connect(context, directory)
            try:
                outputs = run(connection, sql)
            except TaskFailedError:
                raise
            except Exception as exc:  # noqa: BLE001 - duckdb's errors share no base we can name
                raise TaskFailedError(_describe(exc)) from None
            finally:
                connection.close()
            return {**outputs, **self.finish(context, database, files)}
        finally:
            shutil.rmtree(directory, ignore_errors=True)


class Query(_DuckDb):
    """Run SQL on a DuckDB database local to the task; fetch or store the result."""

    TYPE = _PREFIX + "Query"
    ALIASES = ("jdbc.duckdb.Query",)
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        **_RESULT_OUTPUTS,
        "outputFiles": "the files named in outputFiles, by name",
        "databaseUri": "the database file (outputDbFile)",
    }

    def run(self, context: RunContext) -> dict[str, Any]:
        """Run the SQL (every statement; the last one's result is fetched)."""
        duckdb = require_extra("duckdb", "duckdb", self.TYPE)

        def go(connection: Any, sql: str) -> dict[str, Any]:
            statements = duckdb.extract_statements(sql)
            if not statements:
                raise TaskFailedError("sql holds no statement")
            for statement in statements:
                cursor = connection.execute(statement)
            return self.fetch(context, cursor, self.id) if _returns_rows(statements[-1]) else {}

        return self.execute(context, go)


class Queries(_DuckDb):
    """Run several SQL statements on a DuckDB database; one result per statement with rows."""

    TYPE = _PREFIX + "Queries"
    ALIASES = ("jdbc.duckdb.Queries",)
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "outputs": "per statement that returns rows: row, rows, uri and size, as Query's",
        "outputFiles": "the files named in outputFiles, by name",
        "databaseUri": "the database file (outputDbFile)",
    }

    transaction: DynBool = True

    def run(self, context: RunContext) -> dict[str, Any]:
        """Run each statement in order, in one transaction unless ``transaction`` is false."""
        duckdb = require_extra("duckdb", "duckdb", self.TYPE)
        wrapped = _flag(context.render(self.transaction))

        def go(connection: Any, sql: str) -> dict[str, Any]:
            statements = duckdb.extract_statements(sql)
            results = []
            if wrapped:
                connection.execute("BEGIN TRANSACTION")
            try:
                for index, statement in enumerate(statements):
                    cursor = connection.execute(statement)
                    if _returns_rows(statement):
                        results.append(self.fetch(context, cursor, f"{self.id}-{index}"))
            except Exception:
                if wrapped:
                    connection.execute("ROLLBACK")
                raise
            if wrapped:
                connection.execute("COMMIT")
            return {"outputs": results}

        return self.execute(context, go)


def _with_dirs(template: str, directory: Path, files: dict[str, str]) -> str:
    """Resolve Kestra's extra variables ``workingDir`` and ``outputFiles.<name>`` first."""
    values = {"workingDir": str(directory), **{f"outputFiles.{k}": v for k, v in files.items()}}
    for name, value in values.items():
        for spelling in ("{{ " + name + " }}", "{{" + name + "}}"):
            template = template.replace(spelling, value)
    return template


def _names_a_file(value: str) -> bool:
    """Whether an inputFiles value is a stored file's path rather than content."""
    text = value.strip()
    return "\n" not in text and (text.startswith(("/", "file://")))


def _describe(exc: Exception) -> str:
    """DuckDB's error; for a relative file name, how to name the file instead."""
    message = f"{type(exc).__name__}: {exc}"
    if "file system operations are disabled" in message and 'access file "/' not in message:
        message += (
            " (the worker's DuckDB resolves no relative file names: write "
            "'{{ workingDir }}/<file>' for the task's files)"
        )
    return message


def _returns_rows(statement: Any) -> bool:
    """Whether a statement gives a result set (SELECT, PRAGMA, ...), not a count of changes."""
    return [kind.name for kind in statement.expected_result_type] == ["QUERY_RESULT"]


def _batches(cursor: Any, size: int) -> Any:
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield from rows


def _row(columns: list[str], values: Any, zone: dt.tzinfo | None) -> dict[str, Any]:
    return {column: _cell(value, zone) for column, value in zip(columns, values, strict=True)}


def _cell(value: Any, zone: dt.tzinfo | None) -> Any:
    """A DuckDB value as JSON's (Kestra's cell converter): times as ISO-8601 text."""
    if isinstance(value, dict):
        return {str(k): _cell(v, zone) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cell(v, zone) for v in value]
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and zone is not None:
            value = value.replace(tzinfo=zone)
        return value.isoformat()
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TaskFailedError(f"timeZoneId {name!r} is not a time zone") from None


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)
