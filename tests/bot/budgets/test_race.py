"""Budgets under a burst: two real bot processes on one PostgreSQL, turns racing for the rest.

Each answer costs exactly $0.10: the fake model reports 100 completion tokens every time,
and MODEL_PRICES charges $1,000 per million of them and nothing for prompt tokens. Prompt
tokens are left free because the gate can only estimate them (from the text's length),
while it estimates completion tokens from the month's average answer, exactly right here.
The promise under test, a limit passed by one turn's cost at most, is made for turns that
cost what was expected of them: answers longer than the average, let run side by side,
can pass it by their excess as well.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from db.engine import make_engine
from db.models import Conversation, Message, Response, Turn, User
from tests.bot.usage.accounting import assert_totals_match_responses
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.faults import BotProcess
from tests.faults.process import ROOT

pytestmark = pytest.mark.postgresql

PRICES = "gpt-4o-mini=0/1000,gpt-4o=0/500"  # 100 completion tokens: $0.10, or $0.05 on gpt-4o
USAGE = {"prompt_tokens": 40, "completion_tokens": 100, "total_tokens": 140}
TURN = Decimal("0.10")
ANSWER = "Here is an answer that takes about a second to stream back to you."


def slow_answer() -> FakeReply:
    """An answer streamed over about a second, so that the turns of a burst overlap."""
    pieces = [word + " " for word in ANSWER.split(" ")]
    return FakeReply(chunks=pieces, chunk_delay=1.0 / len(pieces), usage=USAGE)


@pytest.fixture
def postgres_url(db_backend: str, db_url: str) -> str:
    """The test's database; this test needs several processes on one server."""
    if db_backend != "postgresql":
        pytest.skip("several bot processes share one database: PostgreSQL")
    return db_url


@pytest.fixture
def db(postgres_url: str) -> Iterator[Engine]:
    """An engine for reading what the bots stored."""
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def two_bots(
    slack: FakeSlackAPI, model: FakeOpenAI, postgres_url: str, tmp_path: Path
) -> Iterator[tuple[BotProcess, BotProcess]]:
    """Two `serve` processes on one database, pricing answers as above."""
    # Small pools: each process takes at most twice 8 + 4 connections of a server that others
    # share (by default each could take 64, and PostgreSQL allows 100 in all).
    settings = {
        "MODEL_PRICES": PRICES,
        "TURN_LEASE_SECONDS": "10",
        "MAX_CONCURRENT_TURNS": "8",
        "HTTP_THREADS": "4",
    }
    bots = [
        BotProcess(
            slack,
            model,
            postgres_url,
            log_path=tmp_path / f"bot-{n}.log",
            command=("serve",),  # named, else mypy sees **settings as a candidate for it
            **settings,
        )
        for n in range(2)
    ]
    yield bots[0], bots[1]
    for bot in bots:
        bot.kill()


def budget(bot: BotProcess, team: str, *words: str) -> str:
    """`python -m bot budget --team TEAM WORDS…`, as an operator types it; what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "bot", "budget", "--team", team, *words],
        cwd=ROOT,
        env=bot.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_until(found: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `found` until it is truthy."""
    deadline = time.monotonic() + timeout
    while not (value := found()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def scalar(engine: Engine, query: Any) -> Any:
    """The one value `query` reads."""
    with engine.connect() as connection:
        return connection.scalar(query)


def all_done(engine: Engine, turns: int) -> bool:
    """Whether `turns` turns are stored and every one of them is done."""
    with engine.connect() as connection:
        stored = connection.scalar(select(func.count()).select_from(Turn))
        open_ = connection.scalar(select(func.count()).where(Turn.state != "done"))
    return stored == turns and open_ == 0


def spend(
    bot: BotProcess, model: FakeOpenAI, db: Engine, team: str, user: str, replies: list[FakeReply]
) -> None:
    """Answer one mention per reply, one after the other: spending before the burst."""
    for reply in replies:
        model.enqueue(reply)
        before = scalar(db, select(func.count()).select_from(Response))
        event = bot.message_event("<@UBOT> warm-up", team_id=team, user=user)
        assert bot.event(event | {"type": "app_mention"}, team_id=team).status == 200

        def answered(before: int = before) -> bool:
            return scalar(db, select(func.count()).select_from(Response)) > before

        wait_until(answered, timeout=10, what="a warm-up answer")


def spent_by(db: Engine, team: str, user: str | None = None) -> Decimal:
    """What `responses` says the team (or one member of it) spent."""
    query = select(func.coalesce(func.sum(Response.cost_usd), 0)).where(Response.team_id == team)
    if user is not None:
        query = query.join(User, User.id == Response.user_id).where(User.slack_user_id == user)
    return Decimal(scalar(db, query))


def burst(bots: tuple[BotProcess, BotProcess], mentions: list[tuple[str, str]]) -> list[str]:
    """Mention the bot once per (team, user) at the same moment, each in a thread of its own.

    Each message reaches both processes, as Slack's two events for a mention can: the
    `app_mention` one process, the `message` the other. The message ts of each, in order.
    """
    first, second = bots
    events = []
    for n, (team, user) in enumerate(mentions):
        event = first.message_event(f"<@UBOT> question {n}", team_id=team, user=user)
        events.append((n, team, event))

    def deliver(item: tuple[int, str, dict[str, Any]]) -> None:
        n, team, event = item
        mention_to, message_to = (first, second) if n % 2 else (second, first)
        assert mention_to.event(event | {"type": "app_mention"}, team_id=team).status == 200
        assert message_to.event(event, team_id=team).status == 200

    with ThreadPoolExecutor(max_workers=25) as pool:
        list(pool.map(deliver, events))
    return [event["ts"] for _, _, event in events]


def outcomes(db: Engine, ts: list[str]) -> dict[str, list[tuple[str | None, str, int, Any]]]:
    """Per message ts: (turn outcome, response status, tokens, cost) of each of its turns."""
    query = (
        select(Message.slack_ts, Turn.outcome, Response.status, Response.tokens_total)
        .add_columns(Response.cost_usd)
        .join(Turn, Turn.message_id == Message.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        # Each message starts a conversation of its own: its response is the conversation's.
        .outerjoin(Response, Response.conversation_id == Conversation.id)
        .where(Message.slack_ts.in_(ts), Message.role == "user")
    )
    found: dict[str, list[tuple[str | None, str, int, Any]]] = {t: [] for t in ts}
    with db.connect() as connection:
        for slack_ts, outcome, status, tokens, cost in connection.execute(query):
            found[slack_ts].append((outcome, status, tokens, cost))
    return found


def test_a_burst_on_two_processes_passes_a_limit_by_one_turn_at_most(
    two_bots: tuple[BotProcess, BotProcess],
    slack: FakeSlackAPI,
    model: FakeOpenAI,
    db: Engine,
) -> None:
    first, second = two_bots
    quick = FakeReply(text="A quick answer.", usage=USAGE)
    half = FakeReply(text="A quick answer.", usage=USAGE, model="gpt-4o")  # $0.05
    model.default_reply = quick
    # T1: the workspace may spend $1.00 and has spent $0.55 (five answers and a half).
    budget(first, "T1", "set", "workspace", "1")
    spend(first, model, db, "T1", "U1", [quick] * 5 + [half])
    # T2: each member may spend $0.50; UA has spent $0.35, UB nothing.
    budget(first, "T2", "set", "default-user", "0.5")
    spend(second, model, db, "T2", "UA", [quick] * 3 + [half])
    assert (spent_by(db, "T1"), spent_by(db, "T2", "UA")) == (Decimal("0.55"), Decimal("0.35"))
    warm_up = scalar(db, select(func.count()).select_from(Response))

    model.default_reply = slow_answer()
    requests_before = len(model.completions())
    mentions = [("T1", f"U{n % 7}") for n in range(50)]
    mentions += [("T2", "UA" if n % 2 else "UB") for n in range(50)]
    started = time.monotonic()
    ts = burst(two_bots, mentions)
    wait_until(lambda: all_done(db, warm_up + 100), timeout=45, what="every turn to be done")
    took = time.monotonic() - started

    # Every message answered or refused exactly once, nothing left running.
    found = outcomes(db, ts)
    assert all(len(rows) == 1 for rows in found.values()), found
    kinds = Counter(rows[0][0] for rows in found.values())
    assert set(kinds) <= {"answered", "refused"}, kinds
    for outcome, status, tokens, cost in (rows[0] for rows in found.values()):
        if outcome == "refused":
            assert (status, tokens, Decimal(cost)) == ("error", 0, Decimal(0))
        else:
            assert (status, tokens, Decimal(cost)) == ("ok", 140, TURN)
    # The model was asked once per answer, and never for a refused turn.
    assert len(model.completions()) - requests_before == kinds["answered"]
    # Slack: one reply per message, a stream or a refusal (in the thread, or to the member).
    replies = Counter(
        call.args.get("thread_ts")
        for call in slack.calls
        if call.method in ("chat.startStream", "chat.postMessage", "chat.postEphemeral")
    )
    assert [replies[t] for t in ts] == [1] * len(ts)

    # The limits: passed by one turn's cost at most, and reached (nothing refused for nothing).
    t1 = spent_by(db, "T1")
    ua, ub = spent_by(db, "T2", "UA"), spent_by(db, "T2", "UB")
    figures = f"T1 {t1}, UA {ua}, UB {ub}, {kinds}, {took:.1f} s"
    assert Decimal("1.00") - TURN < t1 <= Decimal("1.00") + TURN, figures
    for member in (ua, ub):
        assert Decimal("0.50") - TURN < member <= Decimal("0.50") + TURN, figures
    assert_totals_match_responses(db)
