"""The app's OpenAPI schema must equal the committed contract in api/openapi.json."""

from __future__ import annotations

from controlplane.api.contract import CONTRACT, current_schema, render_schema


def test_openapi_matches_committed_contract() -> None:
    committed = CONTRACT.read_text(encoding="utf-8")
    assert render_schema(current_schema()) == committed, (
        "the API changed: review it, then run `python -m controlplane.api.contract`"
    )
