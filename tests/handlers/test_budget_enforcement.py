"""Budgets enforced end to end: signed events into the real app, the fake Slack and model.

Every answer of the fake model reports 100 prompt and 50 completion tokens, and MODEL_PRICES
makes a prompt token cost $0.01 and a completion token $0.02: each answer costs $2.00 exactly.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.budgets.cli import run_budget
from db.models import Response, Turn, UsageMonthly
from tests.blockkit_dump import dump
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.handlers.test_budgets import (
    ADMIN,
    MEMBER,
    MONTH,
    OTHER,
    RESETS,
    budget,
    spend,
    this_month,
)
from tests.harness import TEAM, SlackAppHarness

THIRD = "U0003"
PRICES = (("gpt-4o-mini", Decimal(10_000), Decimal(20_000)),)  # USD per million tokens
USAGE = {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
ANSWER = "Here is the answer."
ANSWERED = ("ok", 150, Decimal(2), None)
REFUSED = ("error", 0, Decimal(0), "not answered: over budget")


@pytest.fixture
def app(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI, model: FakeOpenAI
) -> SlackAppHarness:
    """The app with known prices, one Slack workspace admin and three members."""
    slack.add_user(ADMIN, name="grace", is_admin=True)
    for who in (MEMBER, OTHER, THIRD):
        slack.add_user(who)
    model.default_reply = FakeReply(text=ANSWER, usage=USAGE)
    return make_app(model_prices=PRICES)


def ask(app: SlackAppHarness, *, user: str = MEMBER, channel: str = "C0001", **kwargs: str) -> str:
    """Mention the bot (or reply in `thread_ts`) and wait for the turn to end; the message ts."""
    if "thread_ts" in kwargs:
        ts = app.say("and then?", user=user, channel=channel, **kwargs)
    else:
        ts = app.mention("a question", user=user, channel=channel)
    app.wait_idle()
    return ts


def outcomes(sessions: sessionmaker[Session]) -> list[str | None]:
    with sessions() as session:
        return list(session.scalars(select(Turn.outcome).order_by(Turn.id)))


def accounted(sessions: sessionmaker[Session]) -> list[tuple[str, int, Decimal | None, str | None]]:
    """Each response: (status, tokens, cost, error)."""
    with sessions() as session:
        rows = session.execute(
            select(Response.status, Response.tokens_total, Response.cost_usd, Response.error)
            .where(Response.team_id == TEAM)
            .order_by(Response.id)
        )
        return [(*row,) for row in rows]


def thread_calls(slack: FakeSlackAPI, ts: str) -> list[tuple[str, str]]:
    """What the bot said in the thread of `ts`: (method, text) of each message, ephemeral or
    streamed (a stream's text is all its calls' text)."""
    said: list[tuple[str, str]] = []
    for call in slack.calls:
        if call.args.get("thread_ts") != ts:
            continue
        if call.method == "chat.startStream":
            said.append((call.method, slack.streamed_text(call.response["ts"])))
        elif call.method in ("chat.postMessage", "chat.postEphemeral"):
            said.append((call.method, call.args.get("markdown_text") or call.args["text"]))
    return said


def ephemeral(slack: FakeSlackAPI, ts: str) -> tuple[str, str, str]:
    """The one ephemeral message in the thread of `ts`: (channel, user, text)."""
    [call] = [c for c in slack.calls_to("chat.postEphemeral") if c.args.get("thread_ts") == ts]
    return call.args["channel"], call.args["user"], call.args["markdown_text"]


def notices(slack: FakeSlackAPI) -> list[tuple[str, str]]:
    """The private notices: (member, text) of messages posted to a member's id."""
    return [
        (call.args["channel"], call.args["text"])
        for call in slack.calls_to("chat.postMessage")
        if call.args["channel"].startswith("U")
    ]


def refused(limit: str, amount: str, spent: str, *, by: str = "grace") -> str:
    """The first refusal in a thread: who set the limit by name (never a mention that
    notifies them), and whom to ask."""
    ask = "an admin" if by == "whoever runs Switchboard" else f"{by} or another admin"
    return (
        f"Not answered: {limit} of {amount} (set by {by}) is reached: {spent} spent in {MONTH}. "
        f"It resets on {RESETS} (UTC). To raise it, ask {ask} (`/usage budget`)."
    )


def test_a_refusal_names_who_set_the_limit_once_per_thread_and_never_mentions_them(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    budget(app, "set channel <#C0002|support> 1")
    first = ask(app, channel="C0002")  # $2 of $1: answered, the limit passed by one answer
    ask(app, thread_ts=first, channel="C0002")
    ask(app, user=OTHER, thread_ts=first, channel="C0002")
    other_thread = ask(app, user=OTHER, channel="C0002")
    full = refused("<#C0002>'s monthly limit", "$1.00", "$2.00")
    again = (
        "Not answered: <#C0002>'s monthly limit of $1.00 is still reached: $2.00 spent. "
        f"It resets on {RESETS} (UTC)."
    )
    assert thread_calls(slack, first) == [
        ("chat.startStream", ANSWER),
        ("chat.postMessage", full),  # said once in the thread, with who set it...
        ("chat.postMessage", again),  # ...then only which limit and when it resets
    ]
    assert thread_calls(slack, other_thread) == [("chat.postMessage", full)]  # a new thread
    said = [text for call in slack.calls_to("chat.postMessage") for text in [str(call.args)]]
    assert not any(f"<@{ADMIN}" in text for text in said)  # nobody is pinged
    assert outcomes(sessions) == ["answered", "refused", "refused", "refused"]
    assert len(model.completions()) == 1
    for number, (_, text) in enumerate(thread_calls(slack, first)):
        dump(f"budget_thread_{number}", {"markdown_text": text})


def test_a_workspace_limit_refuses_in_the_thread_before_the_model_is_called(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    budget(app, "set workspace 5")
    first = ask(app)
    ask(app, user=OTHER, channel="C0002")
    third = ask(app)  # starts at $4.00 of $5.00, and is answered in full
    assert thread_calls(slack, third) == [("chat.startStream", ANSWER)]
    assert accounted(sessions) == [ANSWERED] * 3

    ask(app, thread_ts=third)  # a follow-up in that thread
    assert len(model.completions()) == 3
    assert outcomes(sessions) == ["answered"] * 3 + ["refused"]
    assert accounted(sessions)[3] == REFUSED
    said = refused("this workspace's monthly limit", "$5.00", "$6.00")
    # In the thread, for everyone: the limit is the workspace's, not the author's own.
    assert thread_calls(slack, third) == [("chat.startStream", ANSWER), ("chat.postMessage", said)]

    # Anyone, anywhere in the workspace is refused now.
    other = ask(app, user=OTHER, channel="C0002")
    assert thread_calls(slack, other) == [("chat.postMessage", said)]
    assert len(model.completions()) == 3
    assert thread_calls(slack, first) == [("chat.startStream", ANSWER)]

    # Raised, it answers again; the refused question is no part of what the model is shown.
    budget(app, "set workspace 10")
    ask(app, thread_ts=third)
    assert len(model.completions()) == 4
    shown = [m["content"] for m in model.completions()[-1]["messages"][1:]]
    assert shown == ["a question", ANSWER, "and then?"]
    assert outcomes(sessions) == ["answered"] * 3 + ["refused"] * 2 + ["answered"]


def test_the_strictest_limit_applies_and_a_members_own_replaces_the_default(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    budget(app, "set workspace 100")
    budget(app, "set channel <#C0002|support> 1")
    budget(app, "set default-user 1")
    budget(app, f"set user <@{OTHER}> 100")  # higher than the default: it still replaces it
    budget(app, f"set user <@{THIRD}> 100 tokens")

    # Other's own $100 applies to them, not the default $1.
    ask(app, user=OTHER)
    ask(app, user=OTHER)
    # Member has the default $1: answered from $0, then refused privately.
    ask(app, user=MEMBER)
    over_default = ask(app, user=MEMBER)
    assert ephemeral(slack, over_default) == (
        "C0001",
        MEMBER,
        refused("your monthly limit", "$1.00", "$2.00"),
    )
    assert thread_calls(slack, over_default) == [
        ("chat.postEphemeral", refused("your monthly limit", "$1.00", "$2.00"))
    ]
    # The channel's $1 stops Other in C0002, though their own limit has room: said publicly.
    ask(app, user=OTHER, channel="C0002")
    over_channel = ask(app, user=OTHER, channel="C0002")
    assert thread_calls(slack, over_channel) == [
        ("chat.postMessage", refused("<#C0002>'s monthly limit", "$1.00", "$2.00"))
    ]
    # A token limit: 150 tokens spent of 100.
    ask(app, user=THIRD)
    over_tokens = ask(app, user=THIRD)
    assert ephemeral(slack, over_tokens)[2] == refused(
        "your monthly limit", "100 tokens", "150 tokens"
    )
    # Past both their own and the channel's limit, a member is told of their own, privately.
    both = ask(app, user=MEMBER, channel="C0002")
    assert ephemeral(slack, both)[2] == refused("your monthly limit", "$1.00", "$2.00")

    assert outcomes(sessions) == [
        "answered", "answered", "answered", "refused", "answered", "refused", "answered",
        "refused", "refused",
    ]  # fmt: skip
    assert len(model.completions()) == 5
    # Each limit's notice goes to whom it concerns: the member, or the admin who set it.
    heads_up = "Heads-up: you have used {} of your monthly Switchboard limit ($2.00 and 150 "
    until = f"set by <@{ADMIN}>). Once it is reached I stop answering you until it resets on "
    assert notices(slack) == [
        (MEMBER, heads_up.format("200%") + f"tokens of $1.00, {until}{RESETS} (UTC)."),
        (
            ADMIN,
            "Heads-up: 200% of <#C0002>'s monthly limit is used ($2.00 and 150 tokens of "
            f"$1.00). Once it is reached I stop answering there until it resets on {RESETS} "
            "(UTC); `/usage budget` shows every limit.",
        ),
        (THIRD, heads_up.format("150%") + f"tokens of 100 tokens, {until}{RESETS} (UTC)."),
    ]
    assert [row[0] for row in accounted(sessions)] == [
        "ok", "ok", "ok", "error", "ok", "error", "ok", "error", "error",
    ]  # fmt: skip


def test_the_80_percent_notice_goes_out_once_a_month_and_again_for_a_new_limit(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, db_url: str
) -> None:
    budget(app, "")  # the admin has used the bot: the operator's limits notify them
    budget(app, "set default-user 5")
    # Set from the command line: no one set it, so the admins the bot knows are told.
    out = io.StringIO()
    args = argparse.Namespace(team=TEAM, words=["set", "workspace", "10"])
    assert run_budget(app.settings, args, out=out) == 0
    assert out.getvalue().startswith("Set: the workspace may use $10.00 a month")

    ask(app)  # Member: $2 of $5 (40 %)
    assert notices(slack) == []
    ask(app)  # Member: $4 of $5 (80 %); workspace $4 of $10
    personal = (
        "Heads-up: you have used 80% of your monthly Switchboard limit ($4.00 and 300 tokens "
        f"of $5.00, set by <@{ADMIN}>). Once it is reached I stop answering you until it "
        f"resets on {RESETS} (UTC)."
    )
    assert notices(slack) == [(MEMBER, personal)]
    ask(app)  # Member: $6 of $5, passed by one answer; no second notice
    assert notices(slack) == [(MEMBER, personal)]
    ask(app, user=OTHER)  # the workspace: $8 of $10
    workspace = (
        "Heads-up: 80% of this workspace's monthly limit is used ($8.00 and 600 tokens of "
        f"$10.00). Once it is reached I stop answering there until it resets on {RESETS} "
        "(UTC); `/usage budget` shows every limit."
    )
    assert notices(slack) == [(MEMBER, personal), (ADMIN, workspace)]
    ask(app, user=OTHER)  # the workspace: $10 of $10; Other: $4 of their $5
    assert notices(slack) == [(MEMBER, personal), (ADMIN, workspace), (OTHER, personal)]
    over = ask(app, user=OTHER)
    assert thread_calls(slack, over) == [
        (
            "chat.postMessage",
            refused(
                "this workspace's monthly limit", "$10.00", "$10.00", by="whoever runs Switchboard"
            ),
        )
    ]
    assert len(notices(slack)) == 3

    # A new limit is a new threshold: its notice may go out again this month.
    budget(app, "set workspace 15")
    ask(app, user=THIRD)  # $12 of $15
    raised = workspace.replace("$8.00 and 600 tokens of $10.00", "$12.00 and 900 tokens of $15.00")
    assert notices(slack)[3:] == [(ADMIN, raised)]
    assert len(model.completions()) == 6


def test_last_months_spend_and_notice_do_not_count_this_month(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    start = datetime.combine(this_month(), datetime.min.time(), UTC)
    spend(sessions, user=MEMBER, usd=Decimal(50), tokens=10**6, at=start - timedelta(seconds=1))
    with sessions.begin() as session:  # as if last month's 80 % notice went out
        session.execute(update(UsageMonthly).values(notified=True))
    spend(sessions, user=OTHER, usd=Decimal("2.50"), tokens=100, at=start)
    budget(app, "set workspace 5")
    budget(app, "set default-user 5")

    ask(app)  # $2.50 of $5 this month, whatever was spent last month: answered
    assert notices(slack) == [
        (
            ADMIN,
            "Heads-up: 90% of this workspace's monthly limit is used ($4.50 and 250 tokens of "
            f"$5.00). Once it is reached I stop answering there until it resets on {RESETS} "
            "(UTC); `/usage budget` shows every limit.",
        )
    ]
    ask(app)  # $4.50: answered, to $6.50
    over = ask(app)
    assert thread_calls(slack, over) == [
        ("chat.postMessage", refused("this workspace's monthly limit", "$5.00", "$6.50"))
    ]
    assert len(model.completions()) == 2
    # The member's own $5: $4 of it this month (their $50 last month is not counted).
    assert budget(app, "", user=MEMBER).startswith(
        f"Your monthly limit is $5.00: you have used $4.00 and 300 tokens in {MONTH}, and $1.00 "
        "is left."
    )


def test_answers_being_written_hold_their_estimate(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    budget(app, "set workspace 5")
    ask(app)
    ask(app)  # $4 of $5
    model.enqueue(FakeReply(text=ANSWER, usage=USAGE, first_token_delay=1.0))
    slow = app.mention("a slow question", user=MEMBER)
    model.wait_for_requests(3, path="/v1/chat/completions")
    # With $4 spent and about $2 being written, another answer would pass the limit by more
    # than one answer's cost: refused, though the spend alone is under the limit.
    busy = ask(app, user=OTHER, channel="C0002")
    assert thread_calls(slack, busy) == [
        (
            "chat.postMessage",
            "Not answered: this workspace's monthly limit of $5.00 (set by grace) is nearly "
            f"reached: $4.00 spent in {MONTH}, and answers being written right now may use the "
            f"rest. Try again in a minute or two. It resets on {RESETS} (UTC). To raise it, ask "
            "grace or another admin (`/usage budget`).",
        )
    ]
    app.wait_idle()
    assert thread_calls(slack, slow) == [("chat.startStream", ANSWER)]  # finished, past $5
    assert outcomes(sessions) == ["answered", "answered", "answered", "refused"]
    assert len(model.completions()) == 3


def test_simultaneous_questions_pass_a_limit_by_one_answer_at_most(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    budget(app, "set workspace 5")
    # The first answer takes long enough for every other question to be checked meanwhile.
    model.enqueue(FakeReply(text=ANSWER, usage=USAGE, first_token_delay=2.0))
    with ThreadPoolExecutor(6) as senders:  # as Slack does: several events at once
        asked = list(
            senders.map(
                lambda n: app.mention(f"question {n}", user=(MEMBER, OTHER, THIRD)[n % 3]),
                range(6),
            )
        )
    app.wait_idle()
    assert len(model.completions()) == 1
    assert sorted(outcomes(sessions), key=str) == ["answered"] + ["refused"] * 5
    said = [thread_calls(slack, ts) for ts in asked]
    assert said.count([("chat.startStream", ANSWER)]) == 1
    busy = [each for each in said if each[0][0] == "chat.postMessage"]
    assert len(busy) == 5
    assert all("is nearly reached: $0.00 spent" in each[0][1] for each in busy), busy
    assert [row[:3] for row in accounted(sessions)].count(ANSWERED[:3]) == 1


def test_unpriced_models_count_their_tokens_not_dollars(
    make_app: Callable[..., SlackAppHarness],
    slack: FakeSlackAPI,
    model: FakeOpenAI,
    sessions: sessionmaker[Session],
) -> None:
    slack.add_user(ADMIN, is_admin=True)
    model.default_reply = FakeReply(text=ANSWER, usage=USAGE)
    app = make_app(model_provider="homelab")  # no price in MODEL_PRICES, a provider unknown
    budget(app, "set workspace 1")
    budget(app, "set default-user 1 250 tokens")

    ask(app)  # 150 tokens, no dollars: the $1 limits are not reached
    ask(app)  # 300 tokens of 250
    over = ask(app)
    assert ephemeral(slack, over)[2] == refused(
        "your monthly limit", "250 tokens", "300 tokens", by="u0009"
    )
    assert outcomes(sessions) == ["answered", "answered", "refused"]
    # Answers of no known price; the refusal called no model, so it cost nothing.
    assert [row[:3] for row in accounted(sessions)] == [
        ("ok", 150, None),
        ("ok", 150, None),
        ("error", 0, Decimal(0)),
    ]
    assert notices(slack) == [
        (
            MEMBER,
            "Heads-up: you have used 120% of your monthly Switchboard limit ($0.00 and 300 "
            f"tokens of $1.00 and 250 tokens, set by <@{ADMIN}>). Once it is reached I stop "
            f"answering you until it resets on {RESETS} (UTC).",
        )
    ]
    shown = budget(app).split("\n")
    assert f"• The workspace: $1.00, $0.00 and 300 tokens spent (0%) (set by <@{ADMIN}>)" in shown
    # Two requests reached the unpriced model; the refusal is not one of them.
    assert shown[3] == (
        "2 answers this month came from models with no price and are not in the USD figures "
        "(their tokens count against token limits)."
    )
    assert budget(app, "", user=MEMBER) == (
        f"Your monthly limit is $1.00 and 250 tokens: you have used $0.00 and 300 tokens in "
        f"{MONTH}, and $1.00 and 0 tokens is left. It resets on {RESETS} (UTC). 2 answers "
        "of yours came from models with no price and are not in the USD figure."
    )


def test_an_operators_limit_notifies_the_admins_named_in_settings_too(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    """ADMIN_USER_IDS are admins to Switchboard: they hear of a limit no one in Slack set."""
    slack.add_user(ADMIN, name="grace", is_admin=True)
    slack.add_user(MEMBER)
    slack.add_user(THIRD)  # not a Slack admin, named in the settings
    model.default_reply = FakeReply(text=ANSWER, usage=USAGE)
    app = make_app(model_prices=PRICES, admin_user_ids=frozenset({THIRD}))
    budget(app, "")  # the Slack admin has used the bot
    args = argparse.Namespace(team=TEAM, words=["set", "workspace", "5"])
    assert run_budget(app.settings, args, out=io.StringIO()) == 0
    ask(app)
    ask(app)  # $4 of $5
    assert [who for who, _ in notices(slack)] == [ADMIN, THIRD]


def test_a_notice_slack_refuses_is_not_retried_and_the_answer_is_still_accounted(
    app: SlackAppHarness,
    slack: FakeSlackAPI,
    sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The notice goes after the record commits: a refused one loses nothing but itself."""
    budget(app, "set default-user 5")
    ask(app)  # $2 of $5
    slack.fail("chat.postMessage", error="channel_not_found", times=1)
    ask(app)  # $4 of $5: the notice is due, and Slack refuses it
    assert outcomes(sessions) == ["answered", "answered"]
    assert accounted(sessions) == [ANSWERED, ANSWERED]
    [refused_notice] = slack.calls_to("chat.postMessage")
    assert refused_notice.args["channel"] == MEMBER
    assert "80%" in refused_notice.args["text"]
    assert "could not send a budget notice" in caplog.text
    ask(app)  # $6 of $5: the month's notice counts as given, it is not sent again
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert outcomes(sessions) == ["answered"] * 3
