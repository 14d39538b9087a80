"""Tasks that act on executions: Labels, Resume and log.Fetch."""

from controlplane.plugins.execution.tasks import Fetch, Labels, Resume

PLUGINS = (Labels, Resume, Fetch)

__all__ = ["PLUGINS"]
