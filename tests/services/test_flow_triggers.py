"""A Flow trigger starts the listener when the upstream run ends, with its outputs."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from tests.services.test_engine import put_flow, run, wait_for_end


def test_listener_fires_on_upstream_success_only(client: TestClient, corpus: Path) -> None:
    put_flow(client, (corpus / "trigger-flow-listener.yaml").read_text())
    ns, upstream_id = put_flow(client, (corpus / "trigger-flow.yaml").read_text())
    upstream = run(client, ns, upstream_id)
    assert upstream["state"] == "SUCCESS"

    listened: list[dict[str, object]] = []
    for _ in range(200):
        listed = client.get("/api/v1/executions", params={"flow_id": "trigger-flow-listener"})
        listened = listed.json()
        if listened:
            break
        time.sleep(0.02)
    assert len(listened) == 1
    final = wait_for_end(client, str(listened[0]["id"]))
    assert final["trigger"]["executionId"] == upstream["id"]
    assert final["inputs"]["from-parent"] == f"from parents: {upstream['id']}"
    assert final["state"] == "SUCCESS"
