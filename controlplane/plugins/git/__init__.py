"""Git: clone repositories, and start runs when a branch moves."""

from controlplane.plugins.git.clone import Clone
from controlplane.plugins.git.trigger import Trigger

PLUGINS = (Clone, Trigger)

__all__ = ["PLUGINS"]
