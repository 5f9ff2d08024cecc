"""The promise under faults: every acknowledged message is answered exactly once, and accounted.

Faults come from outside, as in production: real bot processes killed with SIGKILL or stopped
with SIGTERM, a TCP proxy between the bot and PostgreSQL that is cut or frozen, Slack calls
refused by the fake Web API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from bot.conversations.history import KEEP_MESSAGES
from bot.conversations.pipeline import STOPPED_NOTE
from bot.conversations.service import INTERRUPTED_NOTE
from db.engine import make_engine
from db.models import Message, Response, Turn
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.faults import BotProcess, TcpProxy
from tests.harness import SlackAppHarness


def slow_reply(seconds: float, text: str = "The answer, word by word, comes slowly.") -> FakeReply:
    """A reply streamed over about `seconds`, a few words at a time."""
    words = text.split(" ")
    pieces = [word + " " for word in words[:-1]] + words[-1:]
    return FakeReply(text=text, chunks=pieces, chunk_delay=seconds / max(1, len(pieces) - 1))


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    """An engine on the test's database, for reading what the bot stored."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def count(engine: Engine, model: Any, *where: Any) -> int:
    """Rows of `model` matching `where`."""
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(model).where(*where)) or 0


def wait_until(found: Callable[[], Any], timeout: float = 20.0, what: str = "it") -> Any:
    """Poll `found` until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def stream_started(slack: FakeSlackAPI, thread_ts: str) -> str:
    """The ts of the first stream started in `thread_ts`."""
    call = slack.wait_until(
        lambda calls: next(
            (
                c
                for c in calls
                if c.method == "chat.startStream" and c.args.get("thread_ts") == thread_ts
            ),
            None,
        ),
        timeout=20,
    )
    return str(call.response["ts"])


def reply_noted(engine: Engine) -> None:
    """Wait until the running turn's reply ts is saved (a few ms after the stream starts)."""
    wait_until(lambda: count(engine, Turn, Turn.reply_ts.is_not(None)), what="the reply's ts")


def stops_of(slack: FakeSlackAPI, ts: str) -> list[str]:
    """The texts `chat.stopStream` was given for the stream `ts`."""
    return [
        str(call.args.get("markdown_text") or "")
        for call in slack.calls_to("chat.stopStream")
        if call.args.get("ts") == ts
    ]


def one_answer(engine: Engine) -> None:
    """Exactly one turn, done; one `responses` row; one assistant message."""
    assert count(engine, Turn) == 1
    assert count(engine, Turn, Turn.state == "done") == 1
    assert count(engine, Response) == 1
    assert count(engine, Message, Message.role == "assistant") == 1


def postgres_via(proxy: TcpProxy, db_url: str) -> str:
    """`db_url` routed through `proxy`."""
    return (
        make_url(db_url)
        .set(host="127.0.0.1", port=proxy.port)
        .render_as_string(hide_password=False)
    )


@pytest.fixture
def bots(
    slack: FakeSlackAPI, model: FakeOpenAI, db_url: str, tmp_path: Path
) -> Iterator[Callable[..., BotProcess]]:
    """Start real bot processes on this test's database; all are killed afterwards."""
    started: list[BotProcess] = []

    def start(**settings: str) -> BotProcess:
        name = f"bot-{len(started)}.log"
        # `command` named, else mypy sees **settings as a candidate for it.
        bot = BotProcess(
            slack, model, db_url, log_path=tmp_path / name, command=("serve",), **settings
        )
        started.append(bot)
        return bot

    yield start
    for bot in started:
        bot.kill()


# --- crashes, deploys, several processes ---------------------------------------------------
def test_a_killed_process_is_answered_for_after_restart_and_its_stream_stopped(
    bots: Callable[..., BotProcess], slack: FakeSlackAPI, model: FakeOpenAI, db: Engine
) -> None:
    model.enqueue(slow_reply(30.0))
    first = bots(TURN_LEASE_SECONDS="1.5")
    ts = first.mention("tell me a long story")
    old_stream = stream_started(slack, ts)
    reply_noted(db)
    first.kill()  # kill -9 in the middle of the reply

    model.enqueue(FakeReply(text="Here is the whole story."))
    bots(TURN_LEASE_SECONDS="1.5")
    wait_until(lambda: count(db, Turn, Turn.state == "done"), what="the turn to be answered")
    assert INTERRUPTED_NOTE in stops_of(slack, old_stream)
    one_answer(db)
    with db.connect() as connection:
        assert connection.scalar(select(Turn.attempts)) == 2
        assert connection.scalar(select(Message.content).where(Message.role == "assistant")) == (
            "Here is the whole story."
        )


def test_a_retry_of_an_unfinished_turn_is_not_lost_as_a_duplicate(
    bots: Callable[..., BotProcess], slack: FakeSlackAPI, model: FakeOpenAI, db: Engine
) -> None:
    model.enqueue(slow_reply(30.0))
    first = bots(TURN_LEASE_SECONDS="1.5")
    event = first.message_event("<@UBOT> hello")
    assert first.event(event | {"type": "app_mention"}).status == 200
    stream_started(slack, event["ts"])
    first.kill()

    model.enqueue(FakeReply(text="Hello again."))
    second = bots(TURN_LEASE_SECONDS="1.5")
    assert second.event(event | {"type": "app_mention"}, retry_num=1).status == 200
    wait_until(lambda: count(db, Turn, Turn.state == "done"), what="the turn to be answered")
    one_answer(db)


def test_sigterm_mid_reply_drains_gives_the_turn_back_and_exits_0(
    bots: Callable[..., BotProcess], slack: FakeSlackAPI, model: FakeOpenAI, db: Engine
) -> None:
    model.enqueue(slow_reply(30.0))
    first = bots(SHUTDOWN_GRACE_SECONDS="0.5")
    ts = first.mention("explain everything")
    stream = stream_started(slack, ts)

    assert first.terminate(timeout=15) == 0
    assert any(STOPPED_NOTE in text for text in stops_of(slack, stream)), first.log()
    assert count(db, Turn, Turn.state == "queued") == 1  # given back, not lost
    assert count(db, Turn, Turn.attempts == 0) == 1  # a deploy is not a failed attempt
    assert count(db, Response) == 0

    model.enqueue(FakeReply(text="Everything, explained."))
    bots()
    wait_until(lambda: count(db, Turn, Turn.state == "done"), what="the turn to be answered")
    one_answer(db)
    assert not slack.open_streams()


def test_sigterm_lets_a_turn_in_flight_finish_within_the_grace(
    bots: Callable[..., BotProcess], slack: FakeSlackAPI, model: FakeOpenAI, db: Engine
) -> None:
    model.enqueue(slow_reply(1.0))
    bot = bots(SHUTDOWN_GRACE_SECONDS="20")
    ts = bot.mention("quick one")
    stream_started(slack, ts)
    assert bot.terminate(timeout=30) == 0
    one_answer(db)
    assert count(db, Response, Response.status == "ok") == 1


def test_two_processes_answer_an_event_delivered_to_both_once(
    bots: Callable[..., BotProcess], slack: FakeSlackAPI, model: FakeOpenAI, db: Engine
) -> None:
    first, second = bots(), bots()
    event = first.message_event("<@UBOT> hi both")
    mention = event | {"type": "app_mention"}
    assert first.event(mention).status == 200
    assert second.event(mention).status == 200
    wait_until(lambda: count(db, Turn, Turn.state == "done"), what="the turn to be answered")
    time.sleep(0.5)
    one_answer(db)
    assert len(model.completions()) == 1


def test_the_other_process_takes_over_a_turn_after_the_lease_runs_out(
    bots: Callable[..., BotProcess], slack: FakeSlackAPI, model: FakeOpenAI, db: Engine
) -> None:
    model.enqueue(slow_reply(30.0))
    first = bots(TURN_LEASE_SECONDS="1.5")
    bots(TURN_LEASE_SECONDS="1.5")
    ts = first.mention("who answers?")
    old_stream = stream_started(slack, ts)
    reply_noted(db)
    model.enqueue(FakeReply(text="The other one does."))
    first.kill()
    wait_until(lambda: count(db, Turn, Turn.state == "done"), what="the turn to be taken over")
    one_answer(db)
    assert INTERRUPTED_NOTE in stops_of(slack, old_stream)


def test_a_thread_read_killed_midway_is_read_again_and_stored_once(
    bots: Callable[..., BotProcess], slack: FakeSlackAPI, model: FakeOpenAI, db: Engine
) -> None:
    root = slack.add_message("C0001", "message 0")["ts"]
    for number in range(1, 250):
        slack.add_message("C0001", f"message {number}", thread_ts=root)
    # The first page is answered, the second hangs: the process is killed in the middle.
    hung = threading.Event()

    def second_page_hangs(args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("cursor"):
            return slack.threads.replies(args)
        hung.set()
        slack.sleep(30)
        return {"ok": False, "error": "fatal_error"}

    slack.respond("conversations.replies", second_page_hangs)
    first = bots(TURN_LEASE_SECONDS="1.5")
    first.mention("summarize this", thread_ts=root)
    assert hung.wait(20)
    first.kill()

    slack.respond("conversations.replies", slack.threads.replies)
    model.enqueue(FakeReply(text="A summary."))
    second = bots(TURN_LEASE_SECONDS="1.5")
    second.say("a reply meanwhile", thread_ts=root)  # kept as context, from its event
    wait_until(lambda: count(db, Turn, Turn.state == "done"), what="the turn to be answered")
    one_answer(db)
    with db.connect() as connection:
        stamps = list(connection.scalars(select(Message.slack_ts)))
    # The thread's first and latest messages, the mention, the reply meanwhile, the answer.
    assert len(stamps) == len(set(stamps)) == KEEP_MESSAGES + 3
    said = [m["content"] for m in model.completions()[-1]["messages"]]
    assert said[1] == "message 0" and said[-1] == "summarize this"


# --- order and isolation -------------------------------------------------------------------
def test_follow_ups_sent_together_are_answered_in_order_and_see_each_other(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    model.enqueue(FakeReply(text="Start."))
    root = app.mention("let us talk")
    app.wait_idle()
    model.enqueue(slow_reply(1.0, "First answer."), FakeReply(text="Second answer."))
    app.say("first question", thread_ts=root)
    app.say("second question", thread_ts=root)
    app.wait_idle(timeout=20)

    second_request = model.completions()[-1]["messages"]
    contents = [m["content"] for m in second_request]
    assert contents[-3:] == ["first question", "First answer.", "second question"]
    starts = [c.at for c in slack.calls_to("chat.startStream")]
    stops = [c.at for c in slack.calls_to("chat.stopStream")]
    # One stream at a time in the thread: each starts after the one before it stopped.
    for later_start, earlier_stop in zip(starts[1:], stops[:-1], strict=False):
        assert later_start >= earlier_stop


def test_commands_answer_while_every_turn_slot_waits_on_a_hung_model(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    app = make_app(max_concurrent_turns=2, model_first_token_timeout=30.0)
    model.enqueue(FakeReply(first_token_delay=8), FakeReply(first_token_delay=8))
    app.mention("one", channel="C1")
    app.mention("two", channel="C2")
    model.wait_for_requests(2, path="/v1/chat/completions")

    started = time.monotonic()
    assert app.command("/model").status == 200
    slack.wait_for_response(1, timeout=3)
    assert time.monotonic() - started < 3.0
    assert app.get("/healthz").status == 200


# --- Slack refusing --------------------------------------------------------------------------
def test_a_failed_append_stops_the_stream_before_going_on_in_a_new_message(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, db: Engine
) -> None:
    slack.fail("chat.appendStream", "ratelimited")
    model.enqueue(FakeReply(chunks=["Hello ", "x" * 4100, " and the end."]))
    ts = app.mention("a long one")
    app.wait_idle()
    stream = stream_started(slack, ts)
    assert stops_of(slack, stream), "the stream whose append failed was never stopped"
    posted = [c for c in slack.calls_to("chat.postMessage") if c.args.get("thread_ts") == ts]
    assert posted, "the reply did not go on in a message of its own"
    assert not slack.open_streams()
    assert count(db, Response, Response.status == "ok") == 1


# --- the database failing --------------------------------------------------------------------
@pytest.mark.postgresql
def test_an_event_that_cannot_be_stored_is_refused_then_answered_on_redelivery(
    make_app: Callable[..., SlackAppHarness],
    db_backend: str,
    db_url: str,
    db: Engine,
    model: FakeOpenAI,
) -> None:
    if db_backend != "postgresql":
        pytest.skip("a database outage is a network fault: PostgreSQL")
    with TcpProxy("127.0.0.1", make_url(db_url).port or 5432) as proxy:
        app = make_app(database_url=postgres_via(proxy, db_url))
        proxy.cut()
        event = app.message_event("<@UBOT> are you there?")
        mention = event | {"type": "app_mention"}
        for _ in range(3):
            assert app.event(mention).status >= 500
        assert count(db, Message) == 0  # nothing half-written
        proxy.restore()
        assert app.event(mention, retry_num=1).status == 200
        app.wait_idle(timeout=20)
    one_answer(db)


@pytest.mark.postgresql
def test_accounting_is_written_once_the_database_is_back(
    make_app: Callable[..., SlackAppHarness],
    db_backend: str,
    db_url: str,
    db: Engine,
    slack: FakeSlackAPI,
    model: FakeOpenAI,
) -> None:
    if db_backend != "postgresql":
        pytest.skip("a database outage is a network fault: PostgreSQL")
    with TcpProxy("127.0.0.1", make_url(db_url).port or 5432) as proxy:
        app = make_app(database_url=postgres_via(proxy, db_url))
        model.enqueue(slow_reply(1.5, "An answer that outlives the database."))
        ts = app.mention("hello")
        stream = stream_started(slack, ts)
        time.sleep(0.3)  # the reply's ts is noted
        proxy.cut()
        wait_until(lambda: stops_of(slack, stream), what="the answer to end")
        time.sleep(1.0)  # the first tries to record fail
        assert count(db, Response) == 0
        proxy.restore()
        app.wait_idle(timeout=30)
    one_answer(db)
    with db.connect() as connection:
        assert connection.scalar(select(Response.status)) == "ok"


@pytest.mark.postgresql
def test_health_answers_fast_while_the_database_is_frozen(
    make_app: Callable[..., SlackAppHarness], db_backend: str, db_url: str
) -> None:
    if db_backend != "postgresql":
        pytest.skip("a frozen database is a network fault: PostgreSQL")
    with TcpProxy("127.0.0.1", make_url(db_url).port or 5432) as proxy:
        app = make_app(database_url=postgres_via(proxy, db_url))
        assert app.get("/healthz").status == 200
        proxy.freeze()
        time.sleep(1.1)  # past the last good answer's freshness
        for _ in range(3):
            started = time.monotonic()
            assert app.get("/healthz").status == 503
            assert time.monotonic() - started < 2.0
        proxy.restore()
        time.sleep(1.1)
        proxy.cut()  # the frozen connection is dropped; new ones go through
        proxy.restore()
        wait_until(lambda: app.get("/healthz").status == 200, timeout=10, what="health back")
