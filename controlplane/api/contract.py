"""The committed OpenAPI contract: write it, and compare the app against it."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from controlplane.api.app import create_app
from controlplane.settings import Settings

CONTRACT = Path(__file__).resolve().parents[2] / "api" / "openapi.json"


def current_schema() -> dict[str, Any]:
    """The OpenAPI document of a freshly built app (on a throwaway in-memory database)."""
    # A configured admin token keeps the throwaway app from minting and printing one,
    # and a temporary data dir keeps it from writing an identity into the checkout.
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            database_url="sqlite://", data_dir=Path(data_dir), admin_token=SecretStr("contract")
        )
        schema: dict[str, Any] = create_app(settings).openapi()
    return schema


def render_schema(schema: dict[str, Any]) -> str:
    """Stable text for committing: sorted keys, two-space indent, final newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    """Write ``api/openapi.json`` from the current app."""
    CONTRACT.write_text(render_schema(current_schema()), encoding="utf-8")


if __name__ == "__main__":
    main()
