"""Core tasks that do their work in the worker: logging, outputs, failing, waiting."""

from controlplane.plugins.core.tasks import Echo, Fail, Log, OutputValues, Return, Sleep

PLUGINS = (Log, Return, Echo, Fail, Sleep, OutputValues)

__all__ = ["PLUGINS"]
