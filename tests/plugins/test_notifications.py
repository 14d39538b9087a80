"""Slack, Teams and Discord webhooks against a local receiver; MailSend against a real SMTP server.

The webhook receiver answers as each service's incoming-webhook reference
says (Slack: 200 ``ok``; Teams: 200 ``1``; Discord's Execute Webhook: 204).
The payloads the tasks post are checked against the shapes those references
document. Mail goes to a real SMTP server (aiosmtpd) with AUTH LOGIN/PLAIN.
"""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.plugins.fake_servers import FakeServer, Reply, Request, serve
from tests.services.test_engine import logs, put_flow, run

_WEBHOOKS = "test_incoming_webhooks_post_the_payloads_as_given"
_SUMMARIES = "test_teams_and_discord_execution_summarize_another_run"
RUNS = {
    "io.kestra.plugin.notifications.slack.SlackIncomingWebhook": _WEBHOOKS,
    "io.kestra.plugin.notifications.teams.TeamsIncomingWebhook": _WEBHOOKS,
    "io.kestra.plugin.notifications.discord.DiscordIncomingWebhook": _WEBHOOKS,
    "io.kestra.plugin.notifications.slack.SlackExecution": (
        "test_slack_execution_in_errors_names_the_failure_and_links_the_run"
    ),
    "io.kestra.plugin.notifications.teams.TeamsExecution": _SUMMARIES,
    "io.kestra.plugin.notifications.discord.DiscordExecution": _SUMMARIES,
    "io.kestra.plugin.notifications.mail.MailSend": (
        "test_mail_send_logs_in_and_delivers_html_text_and_a_file"
    ),
}

NS = "platform.ops"
HOOK_SECRET = "T0001/B0002/hookS3cr3tZ9"  # noqa: S105 - the secret part of every webhook URL
MAIL_PASSWORD = "smtp-Pa55word-7788"  # noqa: S105 - a fixture value
PUBLIC = "https://flowplane.example.com"


def _receiver(request: Request) -> Reply:
    service = request.path.split("/")[1]
    if not request.path.endswith(HOOK_SECRET):
        # Slack's answer to a webhook URL it does not know.
        return Reply(404, "no_service", {"Content-Type": "text/plain"})
    if service == "slack":
        return Reply(200, "ok", {"Content-Type": "text/plain"})
    if service == "teams":
        return Reply(200, "1", {"Content-Type": "text/plain"})
    if service == "discord":
        return Reply(204)
    return Reply(404, "not found")


@pytest.fixture
def hooks(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("FLOWPLANE_PUBLIC_URL", PUBLIC)
    with serve(_receiver) as server:
        for service in ("slack", "teams", "discord"):
            url = f"{server.url}/{service}/{HOOK_SECRET}"
            response = client.put(
                f"/api/v1/namespaces/{NS}/secrets/{service.upper()}_HOOK", json={"value": url}
            )
            assert response.status_code in {200, 201}, response.text
        yield server


def _posted(server: FakeServer, service: str) -> list[Any]:
    return [r.json() for r in server.requests if r.path.startswith(f"/{service}/")]


def _no_secret_shown(client: TestClient, execution: dict[str, Any], secret: str) -> None:
    lines = logs(client, execution["id"])
    assert not [line for line in lines if secret in line]
    assert secret not in str(execution["task_runs"]) + str(execution["outputs"])


def test_incoming_webhooks_post_the_payloads_as_given(
    client: TestClient, hooks: FakeServer
) -> None:
    source = f"""\
id: hello
namespace: {NS}
tasks:
  - id: slack
    type: io.kestra.plugin.notifications.slack.SlackIncomingWebhook
    url: "{{{{ secret('SLACK_HOOK') }}}}"
    payload: |
      {{"text": "Hello from {{{{ flow.id }}}}", "blocks": [{{"type": "section",
        "text": {{"type": "mrkdwn", "text": "*{{{{ flow.id }}}}*"}}}}]}}
  - id: slack_text
    type: io.kestra.plugin.slack.notifications.SlackIncomingWebhook
    url: "{{{{ secret('SLACK_HOOK') }}}}"
    messageText: "plain {{{{ flow.namespace }}}}"
    options: {{headers: {{X-Trace: abc}}, readTimeout: PT5S}}
  - id: teams
    type: io.kestra.plugin.notifications.teams.TeamsIncomingWebhook
    url: "{{{{ secret('TEAMS_HOOK') }}}}"
    payload: '{{"@type": "MessageCard", "@context": "http://schema.org/extensions",
      "summary": "deploy", "text": "deployed {{{{ flow.id }}}}"}}'
  - id: discord
    type: io.kestra.plugin.notifications.discord.DiscordIncomingWebhook
    url: "{{{{ secret('DISCORD_HOOK') }}}}"
    payload: '{{"username": "flowplane", "content": "Hello from {{{{ flow.id }}}}"}}'
"""
    put_flow(client, source)
    execution = run(client, NS, "hello")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    slack = _posted(hooks, "slack")
    assert slack[0]["text"] == "Hello from hello"
    assert slack[0]["blocks"][0]["text"]["text"] == "*hello*"
    assert slack[1] == {"text": "plain platform.ops"}
    trace = [r for r in hooks.requests if "x-trace" in r.headers]
    assert [r.headers["x-trace"] for r in trace] == ["abc"]
    assert trace[0].headers["content-type"] == "application/json; charset=UTF-8"
    assert _posted(hooks, "teams")[0]["text"] == "deployed hello"
    assert _posted(hooks, "discord") == [{"username": "flowplane", "content": "Hello from hello"}]
    _no_secret_shown(client, execution, HOOK_SECRET)

    # A URL the service does not know fails the task with the service's answer.
    put_flow(client, source.replace("secret('DISCORD_HOOK') }}", "secret('DISCORD_HOOK') }}x"))
    failed = run(client, NS, "hello")
    assert failed["state"] == "FAILED"
    assert "Discord webhook answered 404: no_service" in logs(client, failed["id"])


def test_slack_execution_in_errors_names_the_failure_and_links_the_run(
    client: TestClient, hooks: FakeServer
) -> None:
    source = f"""\
id: nightly
namespace: {NS}
tasks:
  - id: extract
    type: io.kestra.plugin.core.log.Log
    message: extracting
  - id: load
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: disk full
errors:
  - id: alert
    type: io.kestra.plugin.notifications.slack.SlackExecution
    url: "{{{{ secret('SLACK_HOOK') }}}}"
    channel: "#ops"
    username: flowplane
    iconEmoji: ":rotating_light:"
    customMessage: "nightly load of {{{{ flow.id }}}} broke"
    customFields:
      env: prod
"""
    put_flow(client, source)
    execution = run(client, NS, "nightly")
    assert execution["state"] == "FAILED"
    (message,) = _posted(hooks, "slack")
    link = f"{PUBLIC}/ui/executions/{execution['id']}"
    headline = f"[{NS}] nightly ➛ FAILED"
    assert message["text"].startswith(f"*<{link}|{headline}>*\n> Failed on task `load` after ")
    assert message["channel"] == "#ops"
    assert message["username"] == "flowplane"
    assert message["icon_emoji"] == ":rotating_light:"
    custom, summary = message["blocks"]
    assert custom["text"]["text"] == "nightly load of nightly broke"
    assert summary["accessory"]["url"] == link
    (attachment,) = message["attachments"]
    assert attachment["color"] == "danger"
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields == {
        "Namespace": NS,
        "Flow": "nightly",
        "Execution": execution["id"],
        "Status": "FAILED",
        "env": "prod",
    }
    assert isinstance(attachment["ts"], int)
    _no_secret_shown(client, execution, HOOK_SECRET)


def test_teams_and_discord_execution_summarize_another_run(
    client: TestClient, hooks: FakeServer
) -> None:
    put_flow(client, f"id: job\nnamespace: {NS}\ntasks:\n  - {{id: a, type: Log, message: hi}}\n")
    target = run(client, NS, "job")
    assert target["state"] == "SUCCESS"
    source = f"""\
id: report
namespace: {NS}
inputs:
  - {{id: target, type: STRING}}
tasks:
  - id: teams
    type: io.kestra.plugin.notifications.teams.TeamsExecution
    url: "{{{{ secret('TEAMS_HOOK') }}}}"
    executionId: "{{{{ inputs.target }}}}"
    themeColor: 2E7D32
    activityTitle: Nightly report
  - id: discord
    type: io.kestra.plugin.notifications.discord.DiscordExecution
    url: "{{{{ secret('DISCORD_HOOK') }}}}"
    executionId: "{{{{ inputs.target }}}}"
    username: flowplane
    content: "run report"
    embedList:
      - {{title: Extra, description: "from {{{{ flow.id }}}}", color: [255, 0, 0]}}
"""
    put_flow(client, source)
    execution = run(client, NS, "report", target=target["id"])
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    link = f"{PUBLIC}/ui/executions/{target['id']}"
    (card,) = _posted(hooks, "teams")
    assert card["@type"] == "MessageCard"
    assert card["themeColor"] == "2E7D32"
    assert card["title"] == f"[{NS}] job ➛ SUCCESS"
    facts = {f["name"]: f["value"] for f in card["sections"][0]["facts"]}
    assert facts["Execution"] == target["id"]
    assert facts["Status"] == "SUCCESS"
    assert card["sections"][0]["activityTitle"] == "Nightly report"
    assert card["potentialAction"][0]["targets"] == [{"os": "default", "uri": link}]
    (discord,) = _posted(hooks, "discord")
    assert discord["username"] == "flowplane"
    assert discord["content"] == "run report"
    extra, summary = discord["embeds"]
    assert extra == {"title": "Extra", "description": "from report", "color": 0xFF0000}
    assert summary["url"] == link
    assert f"Execution: {target['id']}" in summary["description"]
    assert summary["footer"]["text"].startswith("Succeeded after ")
    _no_secret_shown(client, execution, HOOK_SECRET)


# --- MailSend over a real SMTP server -----------------------------------------------


class _Inbox:
    """An aiosmtpd handler keeping each delivered message and the login used."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self.messages.append((envelope, email.message_from_bytes(content)))
        return "250 OK"

    def authenticate(
        self, _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login = (data.login.decode(), data.password.decode())
        self.logins.append(login)
        # handled=False: aiosmtpd answers the failure itself (535), as a server does.
        return AuthResult(success=login == ("ops", MAIL_PASSWORD), handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=inbox.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_mail_send_logs_in_and_delivers_html_text_and_a_file(
    client: TestClient, smtp: tuple[_Inbox, int]
) -> None:
    inbox, port = smtp
    response = client.put(
        f"/api/v1/namespaces/{NS}/secrets/SMTP_PASSWORD", json={"value": MAIL_PASSWORD}
    )
    assert response.status_code in {200, 201}
    source = f"""\
id: mail
namespace: {NS}
tasks:
  - id: files
    type: io.kestra.plugin.core.storage.LocalFiles
    inputs:
      report.csv: "day,count\\nmon,3\\n"
    outputs: [report.csv]
  - id: send
    type: io.kestra.plugin.email.MailSend
    host: 127.0.0.1
    port: {port}
    transportStrategy: SMTP
    username: ops
    password: "{{{{ secret('SMTP_PASSWORD') }}}}"
    from: flowplane@example.com
    to: "oncall@example.com; lead@example.com"
    cc: audit@example.com
    subject: "Report for {{{{ flow.id }}}}"
    htmlTextContent: "<p>Report of <b>{{{{ flow.id }}}}</b></p>"
    plainTextContent: "Report of {{{{ flow.id }}}}"
    attachments:
      - name: report.csv
        uri: "{{{{ outputs.files.uris['report.csv'] }}}}"
        contentType: text/csv
"""
    put_flow(client, source)
    execution = run(client, NS, "mail")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert set(inbox.logins) == {("ops", MAIL_PASSWORD)}
    ((envelope, message),) = inbox.messages
    assert envelope.mail_from == "flowplane@example.com"
    assert envelope.rcpt_tos == ["oncall@example.com", "lead@example.com", "audit@example.com"]
    assert message["From"] == "flowplane@example.com"
    assert message["To"] == "oncall@example.com, lead@example.com"
    assert message["Cc"] == "audit@example.com"
    assert message["Subject"] == "Report for mail"
    parts = {part.get_content_type(): part for part in message.walk()}
    assert parts["text/plain"].get_payload(decode=True).decode().strip() == "Report of mail"
    assert "<b>mail</b>" in parts["text/html"].get_payload(decode=True).decode()
    assert parts["text/csv"].get_filename() == "report.csv"
    assert parts["text/csv"].get_payload(decode=True) == b"day,count\nmon,3\n"
    _no_secret_shown(client, execution, MAIL_PASSWORD)

    # A wrong password fails the task with the server's answer, never the password.
    client.put(f"/api/v1/namespaces/{NS}/secrets/SMTP_PASSWORD", json={"value": "wrong-pass-99"})
    refused = run(client, NS, "mail")
    assert refused["state"] == "FAILED"
    assert any("535" in line for line in logs(client, refused["id"]))
    _no_secret_shown(client, refused, "wrong-pass-99")


def test_mail_send_refuses_what_it_cannot_honour(
    client: TestClient, smtp: tuple[_Inbox, int]
) -> None:
    inbox, port = smtp
    source = f"""\
id: tls
namespace: {NS}
tasks:
  - id: send
    type: io.kestra.plugin.notifications.mail.MailSend
    host: 127.0.0.1
    port: {port}
    transportStrategy: SMTP_TLS
    from: flowplane@example.com
    to: oncall@example.com
    subject: secret plans
    attachments:
      - {{name: passwd, uri: /etc/passwd}}
"""
    put_flow(client, source)
    # The attachment is refused before any connection: it is no file of this run.
    outside = run(client, NS, "tls")
    assert outside["state"] == "FAILED"
    assert "'/etc/passwd' is not a file of this execution" in logs(client, outside["id"])
    put_flow(
        client, source.replace("    attachments:\n      - {name: passwd, uri: /etc/passwd}\n", "")
    )
    # SMTP_TLS against a server without STARTTLS: refused, never sent in clear.
    clear = run(client, NS, "tls")
    assert clear["state"] == "FAILED"
    assert any("does not offer STARTTLS" in line for line in logs(client, clear["id"]))
    assert inbox.messages == []
    with pytest.raises(InvalidFlowError) as raised:
        validate_flow(source.replace("SMTP_TLS", "SMTP_OAUTH2"))
    assert "SMTP_OAUTH2 is not supported" in str(raised.value.problems)


def test_every_webhook_type_takes_options_and_the_summaries_their_remaining_properties(
    client: TestClient, hooks: FakeServer
) -> None:
    put_flow(client, f"id: job\nnamespace: {NS}\ntasks:\n  - {{id: a, type: Log, message: hi}}\n")
    target = run(client, NS, "job")
    assert target["state"] == "SUCCESS"
    options = "options: {headers: {X-Trace: '{{ task.id }}'}, defaultCharset: ISO-8859-1}"
    source = f"""\
id: everything
namespace: {NS}
inputs:
  - {{id: target, type: STRING}}
tasks:
  - id: slack_run
    type: io.kestra.plugin.notifications.slack.SlackExecution
    url: "{{{{ secret('SLACK_HOOK') }}}}"
    executionId: "{{{{ inputs.target }}}}"
    iconUrl: https://flowplane.example.com/icon.png
    {options}
  - id: slack_payload
    type: io.kestra.plugin.notifications.slack.SlackExecution
    url: "{{{{ secret('SLACK_HOOK') }}}}"
    payload: '{{"text": "custom {{{{ flow.id }}}}"}}'
    channel: "#deploys"
  - id: slack_hook
    type: io.kestra.plugin.notifications.slack.SlackIncomingWebhook
    url: "{{{{ secret('SLACK_HOOK') }}}}"
    messageText: hello
    {options}
  - id: teams_run
    type: io.kestra.plugin.notifications.teams.TeamsExecution
    url: "{{{{ secret('TEAMS_HOOK') }}}}"
    executionId: "{{{{ inputs.target }}}}"
    activitySubtitle: "for {{{{ flow.id }}}}"
    customMessage: "teams says {{{{ flow.id }}}}"
    customFields: {{team: ops}}
    {options}
  - id: teams_hook
    type: io.kestra.plugin.notifications.teams.TeamsIncomingWebhook
    url: "{{{{ secret('TEAMS_HOOK') }}}}"
    payload: '{{"text": "caf\u00e9"}}'
    {options}
  - id: discord_run
    type: io.kestra.plugin.notifications.discord.DiscordExecution
    url: "{{{{ secret('DISCORD_HOOK') }}}}"
    executionId: "{{{{ inputs.target }}}}"
    avatarUrl: https://flowplane.example.com/avatar.png
    customMessage: "discord says {{{{ flow.id }}}}"
    customFields: {{team: ops}}
    embedList:
      - {{title: Extra, authorName: flowplane}}
    {options}
  - id: discord_hook
    type: io.kestra.plugin.notifications.discord.DiscordIncomingWebhook
    url: "{{{{ secret('DISCORD_HOOK') }}}}"
    payload: '{{"content": "hi"}}'
    {options}
"""
    put_flow(client, source)
    execution = run(client, NS, "everything", target=target["id"])
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    # options: each task's headers (rendered) and the charset it encodes the body in.
    traced = {r.headers["x-trace"]: r for r in hooks.requests if "x-trace" in r.headers}
    assert set(traced) == {
        "slack_run",
        "slack_hook",
        "teams_run",
        "teams_hook",
        "discord_run",
        "discord_hook",
    }
    assert {r.headers["content-type"] for r in traced.values()} == {
        "application/json; charset=ISO-8859-1"
    }
    assert traced["teams_hook"].body == '{"text": "café"}'.encode("latin-1")
    slack_run, slack_payload, slack_hook = (
        r.json() for r in hooks.requests if r.path.startswith("/slack/")
    )
    assert slack_run["icon_url"] == "https://flowplane.example.com/icon.png"
    fields = {f["title"]: f["value"] for f in slack_run["attachments"][0]["fields"]}
    assert (fields["Execution"], fields["Flow"]) == (target["id"], "job")
    assert slack_payload == {"text": "custom everything", "channel": "#deploys"}
    assert slack_hook == {"text": "hello"}
    card = traced["teams_run"].json()
    assert card["sections"][0]["activitySubtitle"] == "for everything"
    assert card["text"] == "teams says everything"
    facts = {f["name"]: f["value"] for f in card["sections"][0]["facts"]}
    assert (facts["Execution"], facts["team"]) == (target["id"], "ops")
    discord = traced["discord_run"].json()
    assert discord["avatar_url"] == "https://flowplane.example.com/avatar.png"
    extra, summary = discord["embeds"]
    assert extra["author"] == {
        "name": "flowplane",
        "icon_url": "https://flowplane.example.com/avatar.png",
    }
    assert summary["description"].startswith("discord says everything\n")
    assert "team: ops" in summary["description"]
    assert f"Execution: {target['id']}" in summary["description"]
    _no_secret_shown(client, execution, HOOK_SECRET)


def test_mail_send_embeds_images_and_session_timeout_ends_a_silent_server(
    client: TestClient, smtp: tuple[_Inbox, int]
) -> None:
    inbox, port = smtp
    source = f"""\
id: images
namespace: {NS}
tasks:
  - id: files
    type: io.kestra.plugin.core.storage.LocalFiles
    inputs:
      logo.png: "not-really-a-png"
    outputs: [logo.png]
  - id: send
    type: io.kestra.plugin.notifications.mail.MailSend
    host: 127.0.0.1
    port: {port}
    transportStrategy: SMTP
    from: flowplane@example.com
    to: oncall@example.com
    htmlTextContent: '<p><img src="cid:logo.png"></p>'
    embeddedImages:
      - name: logo.png
        uri: "{{{{ outputs.files.uris['logo.png'] }}}}"
        contentType: image/png
"""
    put_flow(client, source)
    execution = run(client, NS, "images")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    ((_envelope, message),) = inbox.messages
    related = next(p for p in message.walk() if p.get_content_type() == "multipart/related")
    image = next(p for p in related.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<logo.png>"
    assert image.get_payload(decode=True) == b"not-really-a-png"

    # A server that accepts the connection and never greets: sessionTimeout 1000 (ms)
    # ends the run FAILED within the 6 s this test waits; the default 10 s would not.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        put_flow(
            client,
            source.replace(f"port: {port}", f"port: {silent.getsockname()[1]}").replace(
                "    transportStrategy: SMTP\n",
                "    transportStrategy: SMTP\n    sessionTimeout: 1000\n",
            ),
        )
        response = client.post(
            f"/api/v1/executions/{NS}/images", params={"wait": True, "timeout": 6}, json={}
        )
        assert response.status_code == 201, response.text
        slow = response.json()
        assert slow["state"] == "FAILED", slow["state"]
        lines = logs(client, slow["id"])
        assert any(
            line.endswith("failed: Connection unexpectedly closed: timed out") for line in lines
        ), lines
