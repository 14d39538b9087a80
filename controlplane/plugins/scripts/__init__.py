"""Shell and Python script tasks, run by the process runner (sandboxed) or in a pod."""

from controlplane.plugins.scripts.tasks import (
    PythonCommands,
    PythonScript,
    ShellCommands,
    ShellScript,
)

PLUGINS = (ShellCommands, ShellScript, PythonCommands, PythonScript)

__all__ = ["PLUGINS"]
