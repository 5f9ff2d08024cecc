"""/usage budget end to end: signed slash commands into the real app, on the fake Slack API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db import queries
from db.models import Budget, User
from tests.fakes import FakeSlackAPI
from tests.harness import TEAM, SlackAppHarness

ADMIN, MEMBER, OTHER = "U0009", "U0001", "U0002"
SYNTAX_START = "`/usage budget` shows the limits; admins change them with"


def this_month() -> date:
    """The first day of the current UTC month: the app's budgets read the real clock."""
    return datetime.now(UTC).date().replace(day=1)


MONTH = f"{this_month():%B %Y}"
RESETS = f"{(this_month() + timedelta(days=32)).replace(day=1):%-d %B %Y}"

BudgetRow = tuple[str, str, Decimal | None, int | None, str | None]


def budget(app: SlackAppHarness, text: str = "", *, user: str = ADMIN) -> str:
    """Send `/usage budget TEXT`; check the ack is empty; the text of the one ephemeral answer."""
    before = len(app.slack.responses)
    ack = app.command("/usage", f"budget {text}".strip(), user=user)
    assert (ack.status, ack.body) == (200, "")
    app.wait_idle()
    answers = app.slack.responses[before:]
    assert len(answers) == 1, answers
    answer = answers[0][1]
    assert answer["response_type"] == "ephemeral"
    assert not answer.get("blocks")
    return answer["text"]


def budgets(sessions: sessionmaker[Session], team_id: str = TEAM) -> set[BudgetRow]:
    """Every budget of the workspace: (scope, scope_id, USD, tokens, set_by)."""
    with sessions() as session:
        rows = session.execute(
            select(
                Budget.scope, Budget.scope_id, Budget.limit_usd, Budget.limit_tokens, Budget.set_by
            ).where(Budget.team_id == team_id)
        )
        return {(*row,) for row in rows}


def spend(
    sessions: sessionmaker[Session],
    *,
    user: str,
    channel: str = "C0001",
    usd: Decimal | None,
    tokens: int,
    at: datetime | None = None,
    team_id: str = TEAM,
) -> None:
    """Record one answer's accounting the way a turn does (its totals included)."""
    with sessions.begin() as session:
        user_row, _ = queries.ensure_user(session, team_id, user)
        queries.add_response(
            session,
            queries.ResponseRecord(
                team_id=team_id,
                user_id=user_row,
                channel_id=channel,
                model_used="gpt-4o-mini" if usd is not None else "llama-local",
                tokens_prompt=tokens - tokens // 10,
                tokens_completion=tokens // 10,
                tokens_total=tokens,
                cost_usd=usd,
                completion_time_ms=500,
                status="ok",
                created_at=at or datetime.now(UTC),
            ),
            slack_user_id=user,
        )


@pytest.fixture
def app(make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI) -> SlackAppHarness:
    """The app with one Slack workspace admin and two members."""
    slack.add_user(ADMIN, name="grace", is_admin=True)
    slack.add_user(MEMBER, name="ada", real_name="Ada Lovelace")
    slack.add_user(OTHER, name="bob", real_name="Bob Kahn")
    return make_app()


@pytest.fixture
def spent(sessions: sessionmaker[Session]) -> None:
    """This month: Ada $12.34 in C0002; Bob an unpriced answer in C0001 and $0.66 in C0002.

    Not counted: Ada's $100 of last month, and another workspace's spend.
    """
    spend(sessions, user=MEMBER, channel="C0002", usd=Decimal("12.34"), tokens=1_234)
    spend(sessions, user=OTHER, channel="C0001", usd=None, tokens=5_000)
    spend(sessions, user=OTHER, channel="C0002", usd=Decimal("0.66"), tokens=766)
    last_month = datetime.combine(this_month(), datetime.min.time(), UTC) - timedelta(seconds=1)
    spend(sessions, user=MEMBER, usd=Decimal(100), tokens=10**6, at=last_month)
    spend(sessions, user=MEMBER, usd=Decimal(999), tokens=10**6, team_id="T0002")


def test_with_no_limits_the_admin_is_told_how_to_set_one(
    app: SlackAppHarness, sessions: sessionmaker[Session]
) -> None:
    text = budget(app)
    assert text.startswith(
        f"*Monthly budgets* ({MONTH}; they reset on {RESETS}, UTC)\n"
        "No limits are set: Switchboard answers without one.\n" + SYNTAX_START
    )
    assert budget(app, "show") == text
    assert budgets(sessions) == set()


def test_an_admin_sets_shows_changes_and_clears_every_scope(
    app: SlackAppHarness, slack: FakeSlackAPI, sessions: sessionmaker[Session], spent: None
) -> None:
    so_far = f"spent in {MONTH} so far). It resets on {RESETS} (UTC)."
    assert budget(app, "set workspace 500") == (
        f"Set: the workspace may use $500.00 a month ($13.00 and 7,000 tokens {so_far}"
    )
    assert budget(app, "set channel <#C0002|support> $50") == (
        f"Set: <#C0002> may use $50.00 a month ($13.00 and 2,000 tokens {so_far}"
    )
    assert budget(app, f"set user <@{MEMBER}|ada> 20 2M tokens") == (
        f"Set: <@{MEMBER}> may use $20.00 and 2,000,000 tokens a month "
        f"($12.34 and 1,234 tokens {so_far}"
    )
    assert budget(app, "set default-user 10") == (
        f"Set: each member (by default) may use $10.00 a month. It resets on {RESETS} (UTC)."
    )
    assert budget(app, "set channel <#C0001|general> 500k tokens").startswith(
        "Set: <#C0001> may use 500,000 tokens a month ($0.00 and 5,000 tokens spent"
    )
    assert budgets(sessions) == {
        ("workspace", "", Decimal(500), None, ADMIN),
        ("channel", "C0002", Decimal(50), None, ADMIN),
        ("channel", "C0001", None, 500_000, ADMIN),
        ("user", MEMBER, Decimal(20), 2_000_000, ADMIN),
        ("default_user", "", Decimal(10), None, ADMIN),
    }

    shown = budget(app).split("\n")
    assert shown[0] == f"*Monthly budgets* ({MONTH}; they reset on {RESETS}, UTC)"
    assert shown[1:-2] == [
        f"• The workspace: $500.00, $13.00 and 7,000 tokens spent (3%) (set by <@{ADMIN}>)",
        f"• <#C0001>: 500,000 tokens, $0.00 and 5,000 tokens spent (1%) (set by <@{ADMIN}>)",
        f"• <#C0002>: $50.00, $13.00 and 2,000 tokens spent (26%) (set by <@{ADMIN}>)",
        f"• Each member (by default): $10.00 (set by <@{ADMIN}>)",
        f"• <@{MEMBER}>: $20.00 and 2,000,000 tokens, $12.34 and 1,234 tokens spent (62%) "
        f"(set by <@{ADMIN}>)",
    ]
    assert shown[-2] == (
        "1 answer this month came from models with no price and is not in the USD figures "
        "(their tokens count against token limits)."
    )
    assert shown[-1].startswith(
        "A member's own limit replaces the default; every other limit that applies must have "
        "room. " + SYNTAX_START
    )

    # Setting again replaces: one row per scope, with the new amounts and its new author.
    slack.add_user(OTHER, name="bob", is_admin=True)
    assert budget(app, "set workspace 2M tokens", user=OTHER).startswith(
        "Set: the workspace may use 2,000,000 tokens a month"
    )
    assert ("workspace", "", None, 2_000_000, OTHER) in budgets(sessions)
    assert len(budgets(sessions)) == 5

    assert budget(app, "clear channel <#C0002|support>") == (
        "Removed the monthly limit on <#C0002>."
    )
    assert budget(app, "remove user <@U0001|ada>") == f"Removed the monthly limit on <@{MEMBER}>."
    assert budget(app, "clear default-user") == (
        "Removed the monthly limit on each member (by default)."
    )
    assert budget(app, "clear default-user") == (
        "There is no limit on each member (by default): nothing changed."
    )
    assert budgets(sessions) == {
        ("workspace", "", None, 2_000_000, OTHER),
        ("channel", "C0001", None, 500_000, ADMIN),
    }


def test_a_member_is_named_by_link_id_or_name(
    app: SlackAppHarness, sessions: sessionmaker[Session], spent: None
) -> None:
    # Ada has a row (she used the bot); her command reads her names from Slack into it.
    assert budget(app, f"set user <@{MEMBER}> 1", user=MEMBER).startswith(
        ":no_entry: Only workspace admins can change budgets."
    )
    assert budget(app, "set user @ada 5").startswith(f"Set: <@{MEMBER}> may use $5.00 a month")
    assert budget(app, "set member Ada 6").startswith(f"Set: <@{MEMBER}> may use $6.00 a month")
    assert budget(app, f"set user {OTHER} 7").startswith(f"Set: <@{OTHER}> may use $7.00 a month")
    assert budgets(sessions) == {
        ("user", MEMBER, Decimal(6), None, ADMIN),
        ("user", OTHER, Decimal(7), None, ADMIN),
    }


def test_bad_input_is_answered_specifically_and_changes_nothing(
    app: SlackAppHarness, slack: FakeSlackAPI, sessions: sessionmaker[Session]
) -> None:
    slack.missing_users.add("U0404")
    with sessions.begin() as session:  # two people share a name
        session.add_all(
            User(team_id=TEAM, slack_user_id=who, username=who.lower(), full_name="Sam")
            for who in ("U0005", "U0006")
        )
    budget(app, "set workspace 100")
    before = budgets(sessions)
    assert before == {("workspace", "", Decimal(100), None, ADMIN)}
    cases = {
        "set channel #x -5": "“-5” is negative: a limit is a positive amount in USD a month, "
        "for example `50`. To remove a limit, use `/usage budget clear …`.",
        "set workspace abc": "“abc” is not an amount: write USD a month as a number with at "
        "most two decimals, for example `50` or `12.50`.",
        "set workspace 0": "A limit of 0 would stop every answer: give more than 0",
        "set workspace 12,50": "“12,50” is not an amount",
        "set user <@U0404|ghost> 20": "I can't find <@U0404> in this workspace: pick the person "
        "from the list Slack offers as you type @.",
        "set user @nobody 20": "I can't tell who “@nobody” is: nobody who used Switchboard is "
        "called that here. Pick the person from the list Slack offers as you type @",
        "set user Sam 20": "I can't tell who “Sam” is: several people are called that here.",
        "clear user <@U0404|ghost>": "I can't find <@U0404> in this workspace",
        "set channel #x 50": "I can't tell which channel “#x” is: pick it from the list Slack "
        "offers as you type #, so that it becomes a link",
        "set channel C0002 50": "I can't tell which channel “C0002” is",
        "set channel 50": "Name the channel after `channel`, for example "
        "`/usage budget set channel #support 20`.",
        "set user": "Name the user after `user`",
        "set": "`budget set` needs a scope: workspace, channel, user or default-user.",
        "set everyone 5": "“everyone” is not a budget scope",
        "set workspace": "Give the limit: an amount in USD a month, for example `50`, and/or "
        "tokens, for example `2M tokens`.",
        "clear workspace 5": "`budget clear` takes no amount: “5”.",
        "raise workspace 5": "I don't understand “raise” after `budget`.",
    }
    for text, says in cases.items():
        answer = budget(app, text)
        assert answer.startswith(f":no_entry: {says}"), (text, answer)
    assert budgets(sessions) == before


def test_a_member_sees_only_their_own_limit_and_what_is_left(
    app: SlackAppHarness, sessions: sessionmaker[Session], spent: None
) -> None:
    assert budget(app, "", user=MEMBER) == "You have no monthly limit of your own on Switchboard."
    budget(app, "set workspace 500")
    budget(app, "set channel <#C0002|support> 50")
    budget(app, "set default-user 10")
    budget(app, f"set user <@{MEMBER}> 20 2M tokens")

    assert budget(app, "", user=MEMBER) == (
        "Your monthly limit is $20.00 and 2,000,000 tokens: you have used $12.34 and 1,234 "
        f"tokens in {MONTH}, and $7.66 and 1,998,766 tokens is left. It resets on {RESETS} (UTC)."
    )
    assert budget(app, "show", user=OTHER) == (
        f"Your monthly limit is $10.00: you have used $0.66 and 5,766 tokens in {MONTH}, and "
        f"$9.34 is left. It resets on {RESETS} (UTC). 1 answer of yours came from models with "
        "no price and is not in the USD figure."
    )
    budget(app, f"set user <@{OTHER}> 5k tokens")
    assert budget(app, "", user=OTHER) == (
        f"Your monthly limit is 5,000 tokens: you have used $0.66 and 5,766 tokens in {MONTH}, "
        f"and 0 tokens is left. It resets on {RESETS} (UTC)."
    )


def test_only_admins_change_budgets(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI, sessions: sessionmaker[Session]
) -> None:
    slack.add_user(ADMIN, is_admin=True)
    slack.add_user(MEMBER)
    slack.add_user(OTHER)  # not a Slack admin, but named in ADMIN_USER_IDS
    app = make_app(admin_user_ids=frozenset({OTHER}))
    budget(app, "set workspace 100")
    budget(app, "set default-user 10")
    before = budgets(sessions)
    refused = (
        ":no_entry: Only workspace admins can change budgets. `/usage budget` shows your own "
        "monthly limit and what is left of it."
    )
    for text in (
        "set workspace 1000",
        f"set user <@{MEMBER}> 1000",
        "clear workspace",
        "clear default-user",
        "remove default-user",
    ):
        assert budget(app, text, user=MEMBER) == refused, text
    assert budgets(sessions) == before
    # A member's view never shows the workspace's limits, whatever they ask for.
    assert budget(app, "", user=MEMBER).startswith("Your monthly limit is $10.00:")
    assert budget(app, "list", user=MEMBER).startswith("Your monthly limit is $10.00:")

    assert budget(app, "set workspace 1000", user=OTHER).startswith(
        "Set: the workspace may use $1,000.00 a month"
    )
    assert budgets(sessions) == {
        ("workspace", "", Decimal(1000), None, OTHER),
        ("default_user", "", Decimal(10), None, ADMIN),
    }


def test_budgets_is_the_same_command(app: SlackAppHarness, sessions: sessionmaker[Session]) -> None:
    before = len(app.slack.responses)
    ack = app.command("/usage", "BUDGETS set workspace 5", user=ADMIN)
    assert (ack.status, ack.body) == (200, "")
    app.wait_idle()
    [(_, answer)] = app.slack.responses[before:]
    assert answer["text"].startswith("Set: the workspace may use $5.00 a month")
    assert budgets(sessions) == {("workspace", "", Decimal(5), None, ADMIN)}
    assert budgets(sessions, "T0002") == set()
