"""Logging set-up: the level people chose, and no message content unless LOG_CONTENT."""

from __future__ import annotations

import logging

from bot.shell.settings import Settings

# Libraries whose DEBUG output holds whole requests and responses: message text, prompts,
# replies and reports (slack_sdk's "Sending a request … body", openai's "Request options").
CONTENT_LOGGERS = (
    "slack_sdk",
    "slack_bolt",
    "openai",
    "httpx",
    "httpcore",
    "httpx2",
    "httpcore2",
    "urllib3",
    "aiohttp",  # the Socket Mode client's transport
    "mcp",  # the MCP SDK: tool calls' arguments and results at DEBUG
)


def configure_logging(settings: Settings) -> None:
    """Log at LOG_LEVEL to stderr; keep the content-logging libraries at INFO or above."""
    logging.basicConfig(
        level=settings.log_level_number,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # With LOG_CONTENT they follow LOG_LEVEL again (an app built anew in the same process).
    cap = logging.NOTSET if settings.log_content else max(settings.log_level_number, logging.INFO)
    for name in CONTENT_LOGGERS:
        logging.getLogger(name).setLevel(cap)
