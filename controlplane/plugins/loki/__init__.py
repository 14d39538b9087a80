"""Grafana Loki: log queries over Loki's HTTP API."""

from controlplane.plugins.loki.query import Query, QueryRange

PLUGINS = (QueryRange, Query)

__all__ = ["PLUGINS"]
