"""Argo CD: sync an application and read its status (REST API over httpx)."""

from controlplane.domain.tasktypes.base import TaskBase

# Filled in as the family's task types land.
PLUGINS: tuple[type[TaskBase], ...] = ()

__all__ = ["PLUGINS"]
