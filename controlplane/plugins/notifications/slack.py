"""Slack incoming webhooks: a message as given, or a summary of a run."""

from __future__ import annotations

import json
from typing import Any

from pydantic import model_validator

from controlplane.domain.fields import Text
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.plugins.notifications.summary import (
    ExecutionNotification,
    RunSummary,
    summarize,
)
from controlplane.plugins.notifications.webhook import WebhookTask

_COLORS = {"SUCCESS": "good", "WARNING": "warning"}  # anything else: "danger"


class SlackIncomingWebhook(WebhookTask):
    """Send a Slack message through an incoming webhook: a JSON ``payload`` or ``messageText``."""

    TYPE = "io.kestra.plugin.notifications.slack.SlackIncomingWebhook"
    ALIASES = (
        "io.kestra.plugin.slack.notifications.SlackIncomingWebhook",
        "io.kestra.plugin.slack.SlackIncomingWebhook",
    )

    payload: Text | None = None
    messageText: Text | None = None  # noqa: N815 - Kestra's field name

    @model_validator(mode="after")
    def _one_message(self) -> SlackIncomingWebhook:
        if (self.payload is None) == (self.messageText is None):
            raise ValueError("give either payload (JSON) or messageText")
        return self

    def run(self, context: RunContext) -> dict[str, Any]:
        """POST the payload (``messageText`` becomes ``{"text": …}``)."""
        if self.payload is not None:
            body: Any = str(context.render(self.payload))
        else:
            body = {"text": str(context.render(self.messageText))}
        self.post(context, body, "Slack")
        return {}


class SlackExecution(WebhookTask, ExecutionNotification):
    """Send a Slack message summarizing a run: flow, state, duration and a link to it."""

    TYPE = "io.kestra.plugin.notifications.slack.SlackExecution"
    ALIASES = (
        "io.kestra.plugin.slack.notifications.SlackExecution",
        "io.kestra.plugin.slack.SlackExecution",
    )

    channel: Text | None = None
    username: Text | None = None
    iconUrl: Text | None = None  # noqa: N815 - Kestra's field name
    iconEmoji: Text | None = None  # noqa: N815
    # Kestra's (inherited from SlackIncomingWebhook): a JSON message sent instead of the summary.
    payload: Text | None = None

    @model_validator(mode="after")
    def _payload_replaces_the_summary(self) -> SlackExecution:
        if self.payload is not None and (self.customFields or self.customMessage is not None):
            raise ValueError(
                "payload replaces the run summary, so customFields and customMessage would "
                "not be sent: drop them, or drop payload"
            )
        return self

    def run(self, context: RunContext) -> dict[str, Any]:
        """Summarize the run named by ``executionId`` and POST it (or POST ``payload``)."""
        # The run is looked up either way, as Kestra does: executionId must name one.
        summary = summarize(
            context,
            self.executionId,
            self.customFields,
            self.customMessage,
            task_id=self.id,
            action="SlackExecution",
        )
        payload = slack_message(summary) if self.payload is None else self._payload(context)
        for name, key in (
            ("channel", "channel"),
            ("username", "username"),
            ("iconUrl", "icon_url"),
            ("iconEmoji", "icon_emoji"),
        ):
            value = getattr(self, name)
            if value is not None:
                payload[key] = str(context.render(value))
        self.post(context, payload, "Slack")
        return {}

    def _payload(self, context: RunContext) -> dict[str, Any]:
        """``payload`` rendered; it must be a JSON object, Slack's message."""
        text = str(context.render(self.payload))
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TaskFailedError(f"the Slack payload is not JSON: {exc}") from None
        if not isinstance(message, dict):
            raise TaskFailedError("the Slack payload must be a JSON object (Slack's message)")
        return message


def slack_message(summary: RunSummary) -> dict[str, Any]:
    """The message, in Slack's incoming-webhook shape: text, blocks, attachments."""
    title = f"*<{summary.link}|{summary.headline}>*\n> {summary.outcome}"
    blocks: list[dict[str, Any]] = []
    if summary.custom_message:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": summary.custom_message}}
        )
    blocks.append(
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": title},
            "accessory": {
                "type": "button",
                "text": {"type": "plain_text", "text": "Details"},
                "url": summary.link,
            },
        }
    )
    attachment: dict[str, Any] = {
        "color": _COLORS.get(summary.state, "danger"),
        "fields": [{"title": k, "value": v, "short": True} for k, v in summary.facts()],
    }
    if summary.start:
        attachment["ts"] = int(summary.start.timestamp())
    return {"text": title, "blocks": blocks, "attachments": [attachment]}
