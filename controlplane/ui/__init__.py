"""The review web UI, served by the API app under ``/ui``."""

from __future__ import annotations

from fastapi import FastAPI


def install_ui(app: FastAPI) -> None:
    """Mount the UI's routes on ``app``."""
    del app
