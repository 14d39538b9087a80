"""Microsoft Teams incoming webhooks: a card as given, or a summary of a run."""

from __future__ import annotations

from typing import Any

from controlplane.domain.fields import Text
from controlplane.plugins.api import RunContext
from controlplane.plugins.notifications.summary import ExecutionNotification, summarize
from controlplane.plugins.notifications.webhook import WebhookTask


class TeamsIncomingWebhook(WebhookTask):
    """Send a Microsoft Teams message through an incoming webhook (a JSON ``payload``)."""

    TYPE = "io.kestra.plugin.notifications.teams.TeamsIncomingWebhook"

    payload: Text

    def run(self, context: RunContext) -> dict[str, Any]:
        """POST the rendered payload."""
        self.post(context, str(context.render(self.payload)), "Teams")
        return {}


class TeamsExecution(WebhookTask, ExecutionNotification):
    """Send a Teams message card summarizing a run: flow, state, duration and a link to it."""

    TYPE = "io.kestra.plugin.notifications.teams.TeamsExecution"

    themeColor: Text = "0076D7"  # noqa: N815 - Kestra's field name and default
    activityTitle: Text | None = None  # noqa: N815
    activitySubtitle: Text | None = None  # noqa: N815

    def run(self, context: RunContext) -> dict[str, Any]:
        """Summarize the run named by ``executionId`` and POST it as a MessageCard."""
        summary = summarize(
            context,
            self.executionId,
            self.customFields,
            self.customMessage,
            task_id=self.id,
            action="TeamsExecution",
        )
        section: dict[str, Any] = {
            "facts": [{"name": k, "value": v} for k, v in summary.facts()],
            "markdown": True,
        }
        if self.activityTitle is not None:
            section["activityTitle"] = str(context.render(self.activityTitle))
        if self.activitySubtitle is not None:
            section["activitySubtitle"] = str(context.render(self.activitySubtitle))
        # The legacy actionable MessageCard that Teams incoming webhooks accept.
        card: dict[str, Any] = {
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "themeColor": str(context.render(self.themeColor)),
            "summary": f"{summary.headline}: {summary.outcome}",
            "title": summary.headline,
            "text": summary.custom_message or summary.outcome,
            "sections": [section],
            "potentialAction": [
                {
                    "@type": "OpenUri",
                    "name": "Open the run",
                    "targets": [{"os": "default", "uri": summary.link}],
                }
            ],
        }
        self.post(context, card, "Teams")
        return {}
