"""Benchmark conversation turns through the real app on the loopback fakes.

The app runs as its own process (`python -m bot serve`, as deployed); this script holds the
fake Slack Web API and model endpoint and sends signed events. It prints: median overhead per
reply with an instant model (event in → reply complete), Slack Web API calls per reply, time
to first visible text of a streamed answer, and wall time for 40 simultaneous conversations
with a 2-second model. Overhead replies are timed one at a time: the next event is sent once
the previous reply's `responses` row is written.

    .venv/bin/python bench/conversations.py [--replies 200] [--database-url URL] [--budgets]

With --budgets, the workspace, the channel and every member have a monthly limit (never
reached), so each turn pays for the budget check before the model call and the 80 % check
when it is recorded; compare with a run without it for the check's cost per turn.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, text

from bot.budgets.commands import BudgetService
from db.engine import make_engine, make_sessionmaker
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.fakes.slack_api import SlackCall
from tests.harness import BOT_USER, SIGNING_SECRET, TEAM, SlackRequests

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def app_process(slack: FakeSlackAPI, model: FakeOpenAI, database_url: str) -> Iterator[str]:
    """`python -m bot serve` on a free port, pointed at the fakes; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.base_url,
        "OPENAI_API_KEY": "bench",
        "OPENAI_BASE_URL": model.base_url,
        "DATABASE_URL": database_url,
        "MODEL_MAX_RETRIES": "0",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)], cwd=ROOT, env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the app did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def reply_done(slack: FakeSlackAPI, thread_ts: str, timeout: float = 30.0) -> float:
    """When the reply in `thread_ts` was completed (monotonic seconds)."""
    streams: set[str] = set()

    def closed(call: SlackCall) -> float | None:
        if call.method == "chat.startStream" and call.args.get("thread_ts") == thread_ts:
            streams.add(call.response.get("ts", ""))
        elif call.method == "chat.stopStream" and call.args.get("ts") in streams:
            return call.at
        return None

    return _first(slack, closed, timeout)


def first_text(slack: FakeSlackAPI, thread_ts: str, timeout: float = 10.0) -> float:
    """When the first text of the reply in `thread_ts` reached Slack."""

    def started(call: SlackCall) -> float | None:
        if call.method == "chat.startStream" and call.args.get("thread_ts") == thread_ts:
            return call.at
        return None

    return _first(slack, started, timeout)


def _first(
    slack: FakeSlackAPI, found: Callable[[SlackCall], float | None], timeout: float
) -> float:
    """The first result of `found` on the calls, looking at each call once.

    The fake wakes this thread on every call while it answers: a scan of every call so far
    would take the GIL from the fake's answer for longer and longer as the bench goes on.
    """
    seen = 0

    def new_calls(calls: list[SlackCall]) -> float | None:
        nonlocal seen
        for call in calls[seen:]:
            seen += 1
            if (result := found(call)) is not None:
                return result
        return None

    return slack.wait_until(new_calls, timeout)


def overhead(
    app: SlackRequests, slack: FakeSlackAPI, model: FakeOpenAI, database: Engine, n: int
) -> None:
    model.default_reply = FakeReply(text="Instant answer.", chunk_size=100)
    for _ in range(20):  # warm up: connections, caches, the user's profile
        _one_turn(app, slack, database)
    slack.reset()
    model.reset()
    times = [_one_turn(app, slack, database) for _ in range(n)]
    calls = [c for c in slack.calls if c.method not in ("response_url", "file_upload")]
    print(f"overhead per reply, instant model (event in → reply complete), {n} replies:")
    print(f"  median {statistics.median(times) * 1000:.1f} ms, "
          f"p95 {statistics.quantiles(times, n=20)[18] * 1000:.1f} ms")  # fmt: skip
    _breakdown(slack, model)
    print(f"Slack Web API calls per reply: {len(calls) / n:.2f} "
          f"({', '.join(sorted({c.method for c in calls}))})")  # fmt: skip


def _one_turn(app: SlackRequests, slack: FakeSlackAPI, database: Engine) -> float:
    """One reply, timed alone: the next is sent once this one's accounting is written."""
    recorded = _responses(database)
    event = app.message_event(f"<@{BOT_USER}> ping") | {"type": "app_mention"}
    started = time.monotonic()
    app.event(event)
    _SENT[event["ts"]] = started
    took = reply_done(slack, event["ts"]) - started
    deadline = time.monotonic() + 30
    while _responses(database) == recorded:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the reply to {event['ts']} was not recorded")
        time.sleep(0.001)
    return took


def _responses(database: Engine) -> int:
    with database.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM responses")).scalar_one()


_SENT: dict[str, float] = {}


def _breakdown(slack: FakeSlackAPI, model: FakeOpenAI) -> None:
    """Where the time goes: event sent → model asked → first text in Slack → reply closed."""
    asked = [r["_at"] for r in model.completions()]
    starts = slack.calls_to("chat.startStream")
    stops = {c.args["ts"]: c.at for c in slack.calls_to("chat.stopStream")}
    phases: list[tuple[float, float, float]] = []
    for ask, start in zip(asked, starts, strict=False):
        sent = _SENT[start.args["thread_ts"]]
        phases.append((ask - sent, start.at - ask, stops[start.response["ts"]] - start.at))
    for name, index in (("event → model asked", 0), ("→ first text", 1), ("→ closed", 2)):
        print(f"    {name}: median {statistics.median(p[index] for p in phases) * 1000:.1f} ms")


def first_visible_text(app: SlackRequests, slack: FakeSlackAPI, model: FakeOpenAI) -> None:
    model.default_reply = FakeReply(text="word " * 100, chunk_size=5, chunk_delay=0.005)
    samples = []
    for _ in range(30):
        event = app.message_event(f"<@{BOT_USER}> stream") | {"type": "app_mention"}
        started = time.monotonic()
        app.event(event)
        samples.append(first_text(slack, event["ts"]) - started)
        reply_done(slack, event["ts"])
    print("time to first visible text, model streaming at once (30 replies):")
    print(f"  median {statistics.median(samples) * 1000:.1f} ms, max {max(samples) * 1000:.1f} ms")


def simultaneous(app: SlackRequests, slack: FakeSlackAPI, model: FakeOpenAI, n: int) -> None:
    model.default_reply = FakeReply(text="Slow but sure.", first_token_delay=2.0)
    events = [
        app.message_event(f"<@{BOT_USER}> q{i}", channel=f"C{i:05d}") | {"type": "app_mention"}
        for i in range(n)
    ]
    started = time.monotonic()
    threads = [threading.Thread(target=app.event, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = max(reply_done(slack, event["ts"]) for event in events)
    print(f"{n} simultaneous conversations, 2-second model: {done - started:.2f} s wall time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--budgets", action="store_true", help="check every turn against limits")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, FakeSlackAPI() as slack, FakeOpenAI() as model:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'bench.db'}"
        with app_process(slack, model, url) as app_url:
            app = SlackRequests(app_url, slack)
            database = make_engine(url)
            if args.budgets:
                budgets = BudgetService(make_sessionmaker(database), None)
                for words in (
                    "workspace 1000000",
                    "channel C0001 100000",
                    "default-user 100000 1000000000 tokens",
                ):
                    budgets.operator(TEAM, ["set", *words.split()])
            with_budgets = ", with workspace, channel and member limits" if args.budgets else ""
            print(
                f"database: {url.split('://')[0]}; app: python -m bot serve (own process)"
                f"{with_budgets}"
            )
            try:
                overhead(app, slack, model, database, args.replies)
            finally:
                database.dispose()
            first_visible_text(app, slack, model)
            simultaneous(app, slack, model, 40)


if __name__ == "__main__":
    main()
