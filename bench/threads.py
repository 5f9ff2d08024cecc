"""Called into a thread: the first visible text when the thread is read from Slack, against a
thread already stored, and the Slack Web API calls reading a thread takes.

The bot runs as its own process (`python -m bot serve`, SQLite by default); this script holds
the loopback fakes of the Slack Web API and of an instant model, and sends signed events. Each
run seeds a new thread of `--messages` messages by 5 people in the fake Slack, mentions the
bot in it (the thread is read with `conversations.replies`), waits for the reply, then
mentions it again in the same thread (now stored: nothing is read). First visible text is
event sent → `chat.startStream`. Prints medians, and the Slack calls of the first run (a
cold process: `auth.test` and each author's `users.info` too) and of the later ones.

    .venv/bin/python bench/threads.py [--runs 15] [--messages 200] [--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.shell import migrations
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.fakes.slack_api import SlackCall
from tests.faults import BotProcess

CHANNEL = "C0001"
PEOPLE = ["U0001", "U0002", "U0003", "U0004", "U0005"]
# Calls of the reply itself, not of reading the thread.
_REPLY_METHODS = {"chat.startStream", "chat.appendStream", "chat.stopStream"}


def seed_thread(slack: FakeSlackAPI, messages: int) -> str:
    """A thread of `messages` messages (its parent included) in the fake Slack; its ts."""
    root = str(slack.add_message(CHANNEL, "Incident: the nightly export failed.")["ts"])
    for number in range(1, messages):
        words = f"Reply {number}: looked at the export logs, step {number % 7} retried fine."
        slack.add_message(CHANNEL, words, user=PEOPLE[number % len(PEOPLE)], thread_ts=root)
    return root


def answered(slack: FakeSlackAPI, thread_ts: str, since: float) -> tuple[float, float]:
    """When the first text of a reply in `thread_ts` started after `since`, and when it ended."""
    started: dict[str, float] = {}

    def done(calls: list[SlackCall]) -> tuple[float, float] | None:
        for call in calls:
            if call.at < since:
                continue
            if call.method == "chat.startStream" and call.args.get("thread_ts") == thread_ts:
                started[str(call.response.get("ts"))] = call.at
            elif call.method == "chat.stopStream" and call.args.get("ts") in started:
                return started[str(call.args["ts"])], call.at
        return None

    return slack.wait_until(done, timeout=60)


def calls_between(slack: FakeSlackAPI, start: float, end: float) -> Counter[str]:
    """Web API calls by method in [start, end], the reply's own left out."""
    return Counter(
        call.method
        for call in slack.calls
        if start <= call.at <= end and call.method not in _REPLY_METHODS
    )


def main() -> None:
    """Run the bench and print medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, FakeSlackAPI() as slack, FakeOpenAI() as model:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'bench.db'}"
        migrations.upgrade(url)
        for number, user in enumerate(PEOPLE):
            slack.add_user(user, real_name=f"Person {number}")
        model.default_reply = FakeReply(text="Here is what the thread says.")
        bot = BotProcess(slack, model, url, log_path=Path(scratch) / "bot.log", LOG_LEVEL="WARNING")
        read: list[float] = []
        stored: list[float] = []
        calls: list[Counter[str]] = []
        try:
            for _ in range(args.runs):
                root = seed_thread(slack, args.messages)
                sent = time.monotonic()
                bot.mention("summarize this thread", thread_ts=root)
                first, end = answered(slack, root, sent)
                read.append(first - sent)
                calls.append(calls_between(slack, sent, end))
                sent = time.monotonic()
                bot.mention("and what should we do next?", thread_ts=root)
                first, _ = answered(slack, root, sent)
                stored.append(first - sent)
        finally:
            bot.kill()
    ms = 1000
    print(f"{args.runs} runs, threads of {args.messages} messages, database {url.split(':')[0]}")
    print(
        f"first visible text, thread read from Slack: median {statistics.median(read) * ms:.1f} ms"
    )
    print(
        f"first visible text, thread already stored: median {statistics.median(stored) * ms:.1f} ms"
    )
    print(f"Slack calls, first thread (cold process): {dict(calls[0])}")
    later = calls[1:] or calls
    methods = sorted({method for counted in later for method in counted})
    medians = {method: statistics.median(c[method] for c in later) for method in methods}
    print(f"Slack calls per later thread (medians): {medians}")


if __name__ == "__main__":
    main()
