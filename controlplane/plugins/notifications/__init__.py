"""Notifications: Slack, Microsoft Teams and Discord webhooks, and email over SMTP."""

from controlplane.plugins.notifications.discord import DiscordExecution, DiscordIncomingWebhook
from controlplane.plugins.notifications.mail import MailSend
from controlplane.plugins.notifications.slack import SlackExecution, SlackIncomingWebhook
from controlplane.plugins.notifications.teams import TeamsExecution, TeamsIncomingWebhook

PLUGINS = (
    SlackIncomingWebhook,
    SlackExecution,
    TeamsIncomingWebhook,
    TeamsExecution,
    DiscordIncomingWebhook,
    DiscordExecution,
    MailSend,
)

__all__ = ["PLUGINS"]
