"""Discord webhooks: a message as given, or a summary of a run as an embed."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from controlplane.domain.fields import StrictModel, Text
from controlplane.plugins.api import RunContext
from controlplane.plugins.notifications.summary import ExecutionNotification, summarize
from controlplane.plugins.notifications.webhook import WebhookTask

_RED, _ORANGE, _GREEN = 0xD32F2F, 0xF9A825, 0x2E7D32
_COLORS = {"SUCCESS": _GREEN, "WARNING": _ORANGE}


class DiscordIncomingWebhook(WebhookTask):
    """Send a Discord message through a webhook (a JSON ``payload``)."""

    TYPE = "io.kestra.plugin.notifications.discord.DiscordIncomingWebhook"

    payload: Text

    def run(self, context: RunContext) -> dict[str, Any]:
        """POST the rendered payload."""
        self.post(context, str(context.render(self.payload)), "Discord")
        return {}


class Embed(StrictModel):
    """One of Kestra's ``embedList`` items, mapped to a Discord embed object."""

    title: Text | None = None
    websiteUrl: Text | None = None  # noqa: N815 - Kestra's field name
    description: Text | None = None
    thumbnail: Text | None = None
    authorName: Text | None = None  # noqa: N815
    color: list[int] | None = Field(default=None, min_length=3, max_length=3)
    footer: Text | None = None

    def render(self, context: RunContext, avatar_url: str | None) -> dict[str, Any]:
        """The embed as Discord's API reference shapes it."""
        embed: dict[str, Any] = {}
        if self.title is not None:
            embed["title"] = str(context.render(self.title))
        if self.description is not None:
            embed["description"] = str(context.render(self.description))
        if self.websiteUrl is not None:
            embed["url"] = str(context.render(self.websiteUrl))
        if self.thumbnail is not None:
            embed["thumbnail"] = {"url": str(context.render(self.thumbnail))}
        if self.authorName is not None:
            author = {"name": str(context.render(self.authorName))}
            if self.websiteUrl is not None:
                author["url"] = embed["url"]
            if avatar_url:
                author["icon_url"] = avatar_url
            embed["author"] = author
        if self.color is not None:
            red, green, blue = self.color
            embed["color"] = (red << 16) + (green << 8) + blue
        if self.footer is not None:
            embed["footer"] = {"text": str(context.render(self.footer))}
        return embed


class DiscordExecution(WebhookTask, ExecutionNotification):
    """Send a Discord message summarizing a run: flow, state, duration and a link to it."""

    TYPE = "io.kestra.plugin.notifications.discord.DiscordExecution"

    username: Text | None = None
    avatarUrl: Text | None = None  # noqa: N815 - Kestra's field name
    content: Text | None = None
    embedList: list[Embed] | None = None  # noqa: N815

    def run(self, context: RunContext) -> dict[str, Any]:
        """Summarize the run named by ``executionId`` and POST it (Execute Webhook)."""
        summary = summarize(
            context,
            self.executionId,
            self.customFields,
            self.customMessage,
            task_id=self.id,
            action="DiscordExecution",
        )
        avatar = str(context.render(self.avatarUrl)) if self.avatarUrl else None
        lines = [summary.custom_message] if summary.custom_message else []
        lines += [f"{name}: {value}" for name, value in summary.facts()]
        embed: dict[str, Any] = {
            "title": summary.headline,
            "url": summary.link,
            "description": "\n".join(lines),
            "color": _COLORS.get(summary.state, _RED),
            "footer": {"text": summary.outcome},
        }
        if summary.start:
            embed["timestamp"] = summary.start.isoformat()
        extra = [e.render(context, avatar) for e in self.embedList or []]
        payload: dict[str, Any] = {"tts": False, "embeds": [*extra, embed]}
        if self.username is not None:
            payload["username"] = str(context.render(self.username))
        if avatar:
            payload["avatar_url"] = avatar
        if self.content is not None:
            payload["content"] = str(context.render(self.content))
        self.post(context, payload, "Discord")
        return {}
