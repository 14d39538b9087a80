"""Notifications: Slack, Microsoft Teams and Discord webhooks, and e-mail over SMTP."""

from controlplane.domain.tasktypes.base import TaskBase

# Filled in as the family's task types land.
PLUGINS: tuple[type[TaskBase], ...] = ()

__all__ = ["PLUGINS"]
