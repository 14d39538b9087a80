"""Running one statement and shaping its result as Kestra's ``fetchType`` asks.

``FETCH_ONE`` gives ``row`` (the first row), ``FETCH`` gives ``rows``,
``STORE`` writes every row to a file and gives its path as ``uri``, ``NONE``
gives nothing; all but ``NONE`` give ``size``. A statement without a result
set (an ``INSERT``) gives no output, as in Kestra. Cells become JSON values as
Kestra's ``PostgresCellConverter`` makes them: dates and times as ISO text,
intervals as ISO durations, ``json`` as maps, arrays as lists, bytes as base64.

A stored file holds one row per line as a JSON object, which is also Ion
text, the format Kestra's STORE writes (``.ion``).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from controlplane.plugins.jdbc.statements import bind_names, first_keyword

if TYPE_CHECKING:
    import psycopg

# Statements a server-side cursor can stream (DECLARE … CURSOR FOR takes only these).
_CURSOR_STATEMENTS = {"select", "with", "values", "table"}


class FetchType(StrEnum):
    """Kestra's ``fetchType``."""

    FETCH_ONE = "FETCH_ONE"
    FETCH = "FETCH"
    STORE = "STORE"
    NONE = "NONE"


def fetch_type(fetch_type: FetchType, *, fetch: bool, fetch_one: bool, store: bool) -> FetchType:
    """The fetch type, the deprecated booleans first as Kestra's ``renderFetchType`` does."""
    if fetch:
        return FetchType.FETCH
    if fetch_one:
        return FetchType.FETCH_ONE
    if store:
        return FetchType.STORE
    return fetch_type


def cell(value: Any) -> Any:  # noqa: C901, PLR0911 - one branch per kind of cell
    """A cell as a JSON value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _iso_interval(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): cell(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [cell(v) for v in value]
    return str(value)


def _iso_interval(value: timedelta) -> str:
    """Kestra's interval text: ``P{y}Y{m}M{d}DT{h}H{m}M{s}S``."""
    seconds = value.seconds + value.microseconds / 1e6
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    whole = int(seconds) if seconds == int(seconds) else round(seconds, 6)
    return f"P0Y0M{value.days}DT{int(hours)}H{int(minutes)}M{whole}S"


def _row(cursor: psycopg.Cursor[Any], values: tuple[Any, ...]) -> dict[str, Any]:
    names = [column.name for column in cursor.description or []]
    return {name: cell(value) for name, value in zip(names, values, strict=True)}


def adapt_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Rendered ``parameters`` as psycopg binds them (maps as JSON)."""
    from psycopg.types.json import Jsonb  # noqa: PLC0415 - loaded with the task

    return {k: Jsonb(v) if isinstance(v, dict) else v for k, v in parameters.items()}


def execute(
    connection: psycopg.Connection[Any],
    statement: str,
    parameters: Mapping[str, Any] | None,
    kind: FetchType,
    *,
    fetch_size: int,
    store_file: Callable[[], Path],
) -> dict[str, Any] | None:
    """Run ``statement``; its outputs, or None when it returned no result set."""
    query = statement
    bound: dict[str, Any] | None = None
    if parameters is not None:
        # Kestra prepares the statement only when parameters are given.
        query = bind_names(statement, set(parameters))
        bound = adapt_parameters(parameters)
    if kind is FetchType.STORE and first_keyword(statement) in _CURSOR_STATEMENTS:
        return _store_streamed(connection, query, bound, fetch_size, store_file())
    with connection.cursor() as cursor:
        cursor.execute(query, bound)
        if cursor.description is None:
            return None
        if kind is FetchType.FETCH_ONE:
            first = cursor.fetchone()
            row = _row(cursor, first) if first is not None else None
            return {"row": row, "size": 0 if row is None else 1}
        if kind is FetchType.FETCH:
            rows = [_row(cursor, values) for values in cursor.fetchall()]
            return {"rows": rows, "size": len(rows)}
        if kind is FetchType.STORE:
            path = store_file()
            size = _write_rows(cursor, path, fetch_size)
            return {"uri": str(path), "size": size}
        return {}


def _store_streamed(
    connection: psycopg.Connection[Any],
    query: str,
    parameters: dict[str, Any] | None,
    fetch_size: int,
    path: Path,
) -> dict[str, Any]:
    """STORE through a server-side cursor: ``fetchSize`` rows per round trip."""
    with connection.transaction(), connection.cursor(name=f"flowplane_{uuid4().hex}") as cursor:
        cursor.itersize = fetch_size
        cursor.execute(query, parameters)
        size = _write_rows(cursor, path, fetch_size)
    return {"uri": str(path), "size": size}


def _write_rows(cursor: psycopg.Cursor[Any], path: Path, fetch_size: int) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with path.open("w", encoding="utf-8") as handle:
        while batch := cursor.fetchmany(fetch_size):
            for values in batch:
                handle.write(json.dumps(_row(cursor, values), ensure_ascii=False) + "\n")
                size += 1
    return size
