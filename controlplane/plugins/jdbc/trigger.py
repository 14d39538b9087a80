"""``io.kestra.plugin.jdbc.postgresql.Trigger``: start a run when a query returns rows.

Every ``interval`` the query runs; when it returns rows the trigger fires, and
the run sees them as ``trigger.rows`` (FETCH) or ``trigger.row`` (FETCH_ONE),
with ``trigger.size``.

Exactly once per result: the fire key is a digest of the rows, within an
*epoch* that a poll returning no rows closes. The same rows seen again by the
next poll, or by another server polling at the same time, start no second
run; once the query has come back empty (the flow consumed the rows, as a
Kestra flow is expected to), the same rows appearing again fire again. Kestra
instead fires on every poll that returns rows, so a flow that never marks its
rows would run once per interval there, and once here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import model_validator

from controlplane.domain.polling import Fire, PollingTrigger, TriggerContext, fire_key_digest
from controlplane.plugins.api import TaskFailedError
from controlplane.plugins.jdbc.connection import PostgresConnection
from controlplane.plugins.jdbc.query import QuerySpec
from controlplane.plugins.jdbc.results import FetchType, execute
from controlplane.plugins.jdbc.statements import split_statements

# The longest a poll's query may run before PostgreSQL cancels it.
POLL_TIMEOUT = "300s"


class Trigger(PollingTrigger, PostgresConnection, QuerySpec):
    """Wait for a query on a PostgreSQL database to return rows."""

    TYPE: ClassVar[str] = "io.kestra.plugin.jdbc.postgresql.Trigger"
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "row": "FETCH_ONE: the first row, a map of column to value",
        "rows": "FETCH: every row, as a list of maps",
        "size": "the number of rows",
    }

    @model_validator(mode="after")
    def _fires_on_rows(self) -> Trigger:
        kind = self.kind()
        if kind is FetchType.NONE:
            raise ValueError(
                "fetchType NONE fetches no rows, so the trigger would never fire; "
                "set fetchType: FETCH (trigger.rows) or FETCH_ONE (trigger.row)"
            )
        if kind is FetchType.STORE:
            raise ValueError(
                "fetchType STORE is not supported on a trigger: the poll runs before any "
                "execution has storage; use FETCH (trigger.rows) or FETCH_ONE (trigger.row)"
            )
        if "fetchSize" in self.model_fields_set:
            raise ValueError("fetchSize applies to STORE only, which a trigger does not support")
        return self

    def poll(self, context: TriggerContext) -> list[Fire] | None:
        """Run the query; fire once for the rows it returns, if any."""
        import psycopg  # noqa: PLC0415 - loaded when a poll runs

        statements = split_statements(str(context.render(self.sql)))
        if len(statements) != 1:
            raise TaskFailedError("sql must be a single statement")
        parameters = self.rendered_parameters(context.render)
        state = context.load_state()
        epoch = int(state.get("epoch", 0)) if isinstance(state, dict) else 0
        armed = bool(state.get("armed")) if isinstance(state, dict) else False
        with self.connect(context.render, context.ensure_not_server_database) as connection:
            try:
                # A poll holds a thread of the server's polling pool: bound it.
                connection.execute(
                    "SELECT set_config('statement_timeout', %s, false)", (POLL_TIMEOUT,)
                )
                outputs = execute(
                    connection,
                    statements[0],
                    parameters,
                    self.kind(),
                    fetch_size=1,
                    store_file=_no_store,
                )
            except psycopg.Error as exc:
                raise TaskFailedError(f"PostgreSQL error: {str(exc).strip()}") from None
        size = int((outputs or {}).get("size", 0))
        context.log("DEBUG", f"Found '{size}' rows")
        if size == 0:
            if armed:
                # The rows were consumed: the same rows appearing again are new.
                context.save_state({"epoch": epoch + 1, "armed": False})
            return []
        if not armed:
            context.save_state({"epoch": epoch, "armed": True})
        variables = dict(outputs or {})
        digest = fire_key_digest(variables.get("rows", variables.get("row")))
        return [Fire(key=f"{epoch}:{digest}", variables=variables)]


def _no_store() -> Any:
    raise TaskFailedError("a trigger stores no file")
