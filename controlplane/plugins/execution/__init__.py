"""Tasks that act on executions and triggers.

Labels, Resume, log.Fetch, Assert, Count, and trigger.Toggle.
"""

from controlplane.plugins.execution.assertions import Assert
from controlplane.plugins.execution.counts import Count
from controlplane.plugins.execution.tasks import Fetch, Labels, Resume
from controlplane.plugins.execution.triggers import Toggle

PLUGINS = (Labels, Resume, Fetch, Assert, Count, Toggle)

__all__ = ["PLUGINS"]
