"""JDBC-style database tasks: PostgreSQL queries, COPY and the polling trigger."""

from controlplane.plugins.jdbc.copy_in import CopyIn
from controlplane.plugins.jdbc.query import Queries, Query
from controlplane.plugins.jdbc.trigger import Trigger

PLUGINS = (Query, Queries, CopyIn, Trigger)

__all__ = ["PLUGINS"]
