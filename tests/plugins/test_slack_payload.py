"""SlackExecution's ``payload`` (Kestra's, inherited from SlackIncomingWebhook) against a receiver.

Kestra's ``SlackExecution`` posts ``payload`` as the message when it is set,
instead of the run summary. The receiver answers as Slack's incoming-webhook
reference says (200 ``ok``; 404 ``no_service`` for an unknown hook), written
from the API reference.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.plugins.fake_servers import FakeServer, Reply, Request, serve
from tests.services.test_engine import logs, put_flow, run

NS = "company.team"
HOOK = "T0001/B0002/payloadHook77"


def _slack(request: Request) -> Reply:
    if request.path != f"/services/{HOOK}":
        return Reply(404, "no_service", {"Content-Type": "text/plain"})
    return Reply(200, "ok", {"Content-Type": "text/plain"})


@pytest.fixture
def slack(client: TestClient) -> Iterator[FakeServer]:
    with serve(_slack) as server:
        response = client.put(
            f"/api/v1/namespaces/{NS}/secrets/SLACK_WEBHOOK",
            json={"value": f"{server.url}/services/{HOOK}"},
        )
        assert response.status_code in {200, 201}, response.text
        yield server


def test_slack_execution_posts_the_payload_instead_of_the_summary(
    client: TestClient, slack: FakeServer
) -> None:
    source = f"""\
id: alert
namespace: {NS}
tasks:
  - id: send_slack_message
    type: io.kestra.plugin.slack.SlackExecution
    url: "{{{{ secret('SLACK_WEBHOOK') }}}}"
    channel: "#alert-engineering"
    executionId: "{{{{ execution.id }}}}"
    payload: |
      {{"text": "The workflow execution {{{{ execution.id }}}} of {{{{ flow.id }}}} ran"}}
"""
    put_flow(client, source)
    execution = run(client, NS, "alert")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    (request,) = slack.requests
    assert request.headers["content-type"].startswith("application/json")
    # The payload as rendered, with the task's channel (legacy webhooks honour it).
    assert request.json() == {
        "text": f"The workflow execution {execution['id']} of alert ran",
        "channel": "#alert-engineering",
    }


def test_a_payload_that_is_not_a_json_object_fails_the_task(
    client: TestClient, slack: FakeServer
) -> None:
    # blueprints/flow-condition-executionstatus gives plain text: Slack would answer 400.
    source = f"""\
id: plain
namespace: {NS}
tasks:
  - id: send
    type: io.kestra.plugin.notifications.slack.SlackExecution
    url: "{{{{ secret('SLACK_WEBHOOK') }}}}"
    payload: "The workflow execution {{{{ execution.id }}}} failed"
"""
    put_flow(client, source)
    execution = run(client, NS, "plain")
    assert execution["state"] == "FAILED"
    assert any("the Slack payload is not JSON" in line for line in logs(client, execution["id"]))
    assert slack.requests == []


def test_payload_with_summary_options_is_refused_at_validation() -> None:
    source = """\
id: both
namespace: company.team
tasks:
  - id: send
    type: io.kestra.plugin.slack.notifications.SlackExecution
    url: https://hooks.slack.com/services/x
    customMessage: nightly
    payload: '{"text": "hi"}'
"""
    with pytest.raises(InvalidFlowError) as caught:
        validate_flow(source)
    assert "payload replaces the run summary" in str(caught.value)
