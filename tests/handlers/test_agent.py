"""Opening the Messages tab: suggested prompts, set through signed events on the real app."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.fakes import FakeSlackAPI
from tests.harness import SlackAppHarness


def open_tab(app: SlackAppHarness, tab: str | None = "messages", **extra: Any) -> float:
    """Send app_home_opened; how long the acknowledgement took."""
    event = {"type": "app_home_opened", "user": "U0001", "channel": "D0001", "tab": tab}
    started = time.monotonic()
    assert app.event(event | extra).status == 200
    took = time.monotonic() - started
    app.wait_idle()
    return took


def test_opening_the_messages_tab_suggests_prompts(
    app: SlackAppHarness, slack: FakeSlackAPI
) -> None:
    open_tab(app)
    [call] = slack.calls_to("assistant.threads.setSuggestedPrompts")
    assert call.args["channel_id"] == "D0001"
    # An agent app's call with thread_ts silently does nothing: none is sent.
    assert "thread_ts" not in call.args
    prompts = call.arg("prompts")
    assert 1 <= len(prompts) <= 4
    assert all(set(p) == {"title", "message"} and p["title"] and p["message"] for p in prompts)
    # The defaults show how to choose a model: in the title, and one prompt that does it.
    assert "/model" in call.args["title"] and "[NAME]" in call.args["title"]
    assert prompts[-1]["message"].startswith("[gpt-4o-mini] ")
    assert slack.calls_to("views.publish") == []


def test_operators_set_their_own_prompts(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI
) -> None:
    app = make_app(suggested_prompts=(("Summarise", "Summarise this for me"), ("Hi", "Hello")))
    open_tab(app)
    [call] = slack.calls_to("assistant.threads.setSuggestedPrompts")
    assert call.arg("prompts") == [
        {"title": "Summarise", "message": "Summarise this for me"},
        {"title": "Hi", "message": "Hello"},
    ]


def test_the_event_is_acknowledged_before_slack_is_called(
    app: SlackAppHarness, slack: FakeSlackAPI
) -> None:
    slack.delay("assistant.threads.setSuggestedPrompts", 1.5)
    assert open_tab(app) < 1.0
    assert len(slack.calls_to("assistant.threads.setSuggestedPrompts")) == 1


def test_a_refused_call_leaves_no_trace(
    app: SlackAppHarness, slack: FakeSlackAPI, caplog: pytest.LogCaptureFixture
) -> None:
    slack.fail("assistant.threads.setSuggestedPrompts", "not_allowed_token_type")
    open_tab(app)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_other_tabs_and_no_tab_set_no_prompts(app: SlackAppHarness, slack: FakeSlackAPI) -> None:
    open_tab(app, None)
    open_tab(app, "about")
    assert slack.calls_to("assistant.threads.setSuggestedPrompts") == []
