"""Slack adapters: turn payloads into service calls and results into Slack messages."""

from __future__ import annotations

from slack_bolt import App

from bot.shell.services import Services
from handlers import (
    errors,
    feedback,
    home,
    installs,
    messages,
    model_command,
    rate_limits,
    replays,
    usage_command,
)


def register(app: App, services: Services) -> None:
    """Attach every listener to the app."""
    errors.register(app, services)
    rate_limits.register(app, services)
    installs.register(app, services)
    replays.register(app, services)
    messages.register(app, services)
    model_command.register(app, services)
    usage_command.register(app, services)
    feedback.register(app, services)
    home.register(app, services)
