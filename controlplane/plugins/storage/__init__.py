"""Files in a task's working directory: LocalFiles, and the helpers WorkingDirectory shares."""

from controlplane.plugins.storage.files import LocalFiles

PLUGINS = (LocalFiles,)

__all__ = ["PLUGINS"]
