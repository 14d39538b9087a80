"""Grafana Loki: log queries over Loki's HTTP API."""

from controlplane.domain.tasktypes.base import TaskBase

# Filled in as the family's task types land.
PLUGINS: tuple[type[TaskBase], ...] = ()

__all__ = ["PLUGINS"]
