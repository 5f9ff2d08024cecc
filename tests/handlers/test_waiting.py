"""A question that must wait for a free worker says so in its thread at once."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from bot.conversations.pipeline import WAITING_STATUS
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.fakes.slack_api import SlackCall
from tests.harness import SlackAppHarness


def statuses_in(slack: FakeSlackAPI, thread_ts: str) -> list[str]:
    """The statuses set in `thread_ts`, in order."""
    return statuses(slack.calls, thread_ts)


def statuses(calls: Sequence[SlackCall], thread_ts: str) -> list[str]:
    """The statuses `calls` set in `thread_ts`, in order."""
    return [
        str(call.args.get("status"))
        for call in calls
        if call.method == "assistant.threads.setStatus" and call.args.get("thread_ts") == thread_ts
    ]


def test_a_question_waiting_for_a_free_worker_shows_a_status_at_once(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    app = make_app(max_concurrent_turns=1)
    model.enqueue(FakeReply(text="First.", first_token_delay=2.0), FakeReply(text="Second."))
    first = app.mention("one", channel="C1")
    model.wait_for_requests(1, path="/v1/chat/completions")
    sent = time.monotonic()
    second = app.mention("two", channel="C2")
    slack.wait_until(lambda calls: statuses(calls, second) or None, timeout=5)
    shown = time.monotonic() - sent
    assert shown < 1.0, f"the waiting status came after {shown:.2f} s"
    assert statuses_in(slack, second)[0] == WAITING_STATUS
    app.wait_idle(timeout=20)
    assert WAITING_STATUS not in statuses_in(slack, first)  # it had a worker at once
    assert len(slack.calls_to("chat.startStream")) == 2  # and the second was answered


def test_a_question_with_a_free_worker_shows_no_waiting_status(
    app: SlackAppHarness, slack: FakeSlackAPI
) -> None:
    ts = app.mention("hello")
    app.wait_idle()
    assert WAITING_STATUS not in statuses_in(slack, ts)
