"""OpenAI: chat completions through the official client, any compatible base URL."""

from controlplane.domain.tasktypes.base import TaskBase

# Filled in as the family's task types land.
PLUGINS: tuple[type[TaskBase], ...] = ()

__all__ = ["PLUGINS"]
