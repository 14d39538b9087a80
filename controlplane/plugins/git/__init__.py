"""Git: clone repositories, start runs when a branch moves, push and sync flows."""

from controlplane.plugins.git.clone import Clone
from controlplane.plugins.git.push_flows import PushFlows
from controlplane.plugins.git.sync_flows import SyncFlows
from controlplane.plugins.git.trigger import Trigger

PLUGINS = (Clone, Trigger, PushFlows, SyncFlows)

__all__ = ["PLUGINS"]
