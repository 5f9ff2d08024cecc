"""Registering listeners that acknowledge at once and do their work afterwards.

The app runs with `process_before_response` (events are acknowledged only once stored), so a
listener's work delays Slack's acknowledgement unless it is registered lazily: the ack function
answers Slack, and the work runs after it on Bolt's listener threads (never on turn workers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack


def acknowledge(ack: Ack) -> None:
    """Tell Slack the request arrived; what it asks for follows."""
    ack()


def after_ack(register: Callable[..., Any], work: Callable[..., Any]) -> None:
    """Register `work` to run after an empty acknowledgement; `register` is e.g. a command."""
    register(ack=acknowledge, lazy=[work])
