"""``io.kestra.plugin.jdbc.postgresql.Query`` and ``Queries``: SQL against PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar
from uuid import uuid4

from pydantic import Field, field_validator

from controlplane.domain.fields import StrictModel
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.plugins.jdbc.connection import PostgresConnection
from controlplane.plugins.jdbc.results import FetchType, execute, fetch_type
from controlplane.plugins.jdbc.statements import split_statements

_PREFIX = "io.kestra.plugin.jdbc.postgresql."
_OUTPUTS = {
    "row": "FETCH_ONE: the first row, a map of column to value",
    "rows": "FETCH: every row, as a list of maps",
    "uri": "STORE: the file holding one row per line (JSON, which is Ion text)",
    "size": "the number of rows fetched or stored",
}


class QuerySpec(StrictModel):
    """The statement properties Query, Queries and the Trigger share."""

    sql: str
    parameters: dict[str, Any] | None = None
    fetchType: FetchType = FetchType.NONE  # noqa: N815 - Kestra's field name
    fetchSize: int = Field(default=10_000, ge=1)  # noqa: N815
    # Deprecated in Kestra 0.19 for fetchType, still read first as Kestra does.
    fetch: bool = False
    fetchOne: bool = False  # noqa: N815
    store: bool = False

    @field_validator("fetchType", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def kind(self) -> FetchType:
        """The effective fetch type (the deprecated booleans win)."""
        return fetch_type(
            self.fetchType, fetch=self.fetch, fetch_one=self.fetchOne, store=self.store
        )

    def rendered_parameters(self, render: Any) -> dict[str, Any] | None:
        """``parameters`` with their templates rendered."""
        return None if self.parameters is None else dict(render(self.parameters))


def store_file(context: RunContext, task_id: str) -> Path:
    """A new file among the task's output files (kept beside the working directory)."""
    return context.working_dir.parent / "output-files" / task_id / f"{uuid4().hex}.ion"


def database_error(exc: Exception) -> TaskFailedError:
    """A psycopg error as the task's failure (the worker masks revealed secrets)."""
    return TaskFailedError(f"PostgreSQL error: {str(exc).strip()}")


class Query(TaskBase, PostgresConnection, QuerySpec):
    """Run one SQL statement on PostgreSQL and fetch its result."""

    TYPE: ClassVar[str] = _PREFIX + "Query"
    OUTPUTS: ClassVar[Mapping[str, str]] = _OUTPUTS

    afterSQL: str | None = None  # noqa: N815 - Kestra's field name

    def run(self, context: RunContext) -> dict[str, Any]:
        """Run ``sql`` (then ``afterSQL`` in the same transaction); outputs per fetchType."""
        import psycopg  # noqa: PLC0415 - loaded when the task runs

        statements = split_statements(str(context.render(self.sql)))
        if len(statements) != 1:
            raise TaskFailedError(
                "Query task support only a single SQL statement. "
                "Use the Queries task to run multiple statements."
                if statements
                else "sql holds no statement"
            )
        after = split_statements(str(context.render(self.afterSQL))) if self.afterSQL else []
        if len(after) > 1:
            raise TaskFailedError("afterSQL must be a single statement")
        parameters = self.rendered_parameters(context.render)
        kind = self.kind()
        with self.connect(
            context.render, context.ensure_not_server_database, autocommit=not after
        ) as connection:
            try:
                outputs = execute(
                    connection,
                    statements[0],
                    parameters,
                    kind,
                    fetch_size=self.fetchSize,
                    store_file=lambda: store_file(context, self.id),
                )
                for statement in after:
                    execute(
                        connection,
                        statement,
                        parameters,
                        FetchType.NONE,
                        fetch_size=self.fetchSize,
                        store_file=lambda: store_file(context, self.id),
                    )
                if after:
                    connection.commit()
            except psycopg.Error as exc:
                raise database_error(exc) from None
        if kind is FetchType.NONE and outputs is not None:
            context.log("INFO", "fetchType is set to NONE, no output will be returned")
        return outputs or {}


class Queries(TaskBase, PostgresConnection, QuerySpec):
    """Run several SQL statements on PostgreSQL, in one transaction by default."""

    TYPE: ClassVar[str] = _PREFIX + "Queries"
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "outputs": "one entry per statement that returned rows: row, rows, uri, size "
        "as fetchType asks",
    }

    transaction: bool = True
    afterSQL: str | None = None  # noqa: N815

    def run(self, context: RunContext) -> dict[str, Any]:
        """Run each statement of ``sql`` in order; roll all back on a failure when transactional."""
        import psycopg  # noqa: PLC0415 - loaded when the task runs

        statements = split_statements(str(context.render(self.sql)))
        statements += split_statements(str(context.render(self.afterSQL))) if self.afterSQL else []
        if not statements:
            raise TaskFailedError("sql holds no statement")
        parameters = self.rendered_parameters(context.render)
        kind = self.kind()
        results: list[dict[str, Any]] = []
        with self.connect(
            context.render, context.ensure_not_server_database, autocommit=not self.transaction
        ) as connection:
            try:
                for statement in statements:
                    if context.should_stop():
                        raise TaskFailedError("stopped before every statement ran")
                    outputs = execute(
                        connection,
                        statement,
                        parameters,
                        kind,
                        fetch_size=self.fetchSize,
                        store_file=lambda: store_file(context, self.id),
                    )
                    if outputs is not None:
                        results.append(outputs)
                if self.transaction:
                    connection.commit()
            except psycopg.Error as exc:
                if self.transaction:
                    connection.rollback()
                raise database_error(exc) from None
        return {"outputs": results}
