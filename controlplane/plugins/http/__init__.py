"""The HTTP request task."""

from controlplane.plugins.http.request import Request

PLUGINS = (Request,)

__all__ = ["PLUGINS"]
