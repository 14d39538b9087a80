"""Serialisation: CSV, JSON and Amazon Ion conversions of files in the execution's storage."""

from controlplane.domain.tasktypes.base import TaskBase

# Filled in as the family's task types land.
PLUGINS: tuple[type[TaskBase], ...] = ()

__all__ = ["PLUGINS"]
