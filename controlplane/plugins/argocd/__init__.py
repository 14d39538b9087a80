"""Argo CD: sync an application and read its status (REST API over httpx)."""

from controlplane.plugins.argocd.apps import Status, Sync

PLUGINS = (Sync, Status)

__all__ = ["PLUGINS"]
