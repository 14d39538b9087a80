"""A webhook condition is the one server-side render in a request: a costly one
answers with its bound, and the server keeps answering meanwhile."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from httpx import Response

COSTLY_WEBHOOK = """\
id: costly-condition
namespace: company.team
tasks:
  - id: out
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.body }}"
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: costlyKey
    conditions:
      - type: io.kestra.plugin.core.condition.ExpressionCondition
        expression: "{{ 9 ** 14348905 > 1 }}"
"""


def test_costly_webhook_condition_is_refused_and_the_server_stays_up(client: TestClient) -> None:
    put = client.put(
        "/api/v1/flows/company.team/costly-condition", json={"content": COSTLY_WEBHOOK}
    )
    assert put.status_code in {200, 201}, put.text

    answers: list[Response] = []
    webhook = threading.Thread(
        target=lambda: answers.append(
            client.post(
                "/api/v1/executions/webhook/company.team/costly-condition/costlyKey",
                json={"hello": "world"},
            )
        )
    )
    webhook.start()
    health = client.get("/healthz")
    webhook.join()

    assert health.status_code == 200
    [answer] = answers
    assert answer.status_code == 409, answer.text
    message = answer.json()["message"]
    assert "webhook hook: its condition could not be evaluated" in message
    assert "expression exceeded its cost bound: integer result too large" in message
    # Refused, so no run was started.
    runs = client.get("/api/v1/executions", params={"namespace": "company.team"})
    assert runs.status_code == 200
    assert runs.json() == []
