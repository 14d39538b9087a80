"""The REST API (``/api/v1``)."""

from controlplane.api.app import create_app

__all__ = ["create_app"]
