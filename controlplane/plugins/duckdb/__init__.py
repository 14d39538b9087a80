"""DuckDB: run SQL on a DuckDB database local to the task (Kestra's jdbc.duckdb tasks)."""

from controlplane.plugins.duckdb.query import Queries, Query

PLUGINS = (Query, Queries)

__all__ = ["PLUGINS"]
