"""The HTTP tasks: Request, and Download into the execution's files."""

from controlplane.plugins.http.download import Download
from controlplane.plugins.http.request import Request

PLUGINS = (Request, Download)

__all__ = ["PLUGINS"]
