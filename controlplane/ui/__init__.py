"""The review web UI, served by the API app under ``/ui``.

Server-rendered pages (Jinja2) with htmx for partial updates; no build step.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import RedirectResponse

from controlplane.settings import Settings
from controlplane.ui.app import build_ui


def install_ui(app: FastAPI) -> None:
    """Mount the UI at ``/ui`` and send ``/`` there."""
    settings: Settings = app.state.settings
    app.mount("/ui", build_ui(app, settings))

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)
