"""Kubernetes kubectl tasks: apply, get and delete resources through the Kubernetes API."""

from controlplane.plugins.kubernetes.kubectl import Apply, Delete, Get

PLUGINS = (Apply, Get, Delete)

__all__ = ["PLUGINS"]
