"""Reading `/usage budget WORDS`: no database, no Slack."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.orm import sessionmaker

from bot.budgets.commands import (
    MAX_TOKENS,
    MAX_USD,
    BudgetCommand,
    BudgetError,
    BudgetService,
    parse_budget,
)


def parse(text: str) -> BudgetCommand:
    return parse_budget(text.split())


def refusal(text: str) -> str:
    with pytest.raises(BudgetError) as raised:
        parse(text)
    return str(raised.value)


@pytest.mark.parametrize("text", ["", "show", "list", "SHOW"])
def test_show(text: str) -> None:
    assert parse(text) == BudgetCommand("show")


@pytest.mark.parametrize(
    ("text", "usd", "tokens"),
    [
        ("50", Decimal("50"), None),
        ("$50", Decimal("50"), None),
        ("50$", Decimal("50"), None),
        ("50usd", Decimal("50"), None),
        ("12.50", Decimal("12.50"), None),
        ("$12.5", Decimal("12.5"), None),
        ("0.01", Decimal("0.01"), None),
        ("1,000", Decimal("1000"), None),
        ("$1,000,000.50", Decimal("1000000.50"), None),
        ("2M tokens", None, 2_000_000),
        ("2m TOKENS", None, 2_000_000),
        ("500k tokens", None, 500_000),
        ("1.5k tokens", None, 1_500),
        ("2000000 tokens", None, 2_000_000),
        ("2,000,000 tokens", None, 2_000_000),
        ("1 token", None, 1),
        ("2Mtokens", None, 2_000_000),
        ("$50 2M tokens", Decimal("50"), 2_000_000),
        ("2M tokens $50", Decimal("50"), 2_000_000),
        (f"{MAX_USD} {MAX_TOKENS} tokens", MAX_USD, MAX_TOKENS),
    ],
)
def test_amounts(text: str, usd: Decimal | None, tokens: int | None) -> None:
    assert parse(f"set workspace {text}") == BudgetCommand("set", "workspace", None, usd, tokens)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("-5", "“-5” is negative: a limit is a positive amount in USD a month"),
        ("$-5", "“$-5” is negative"),
        ("0", "A limit of 0 would stop every answer: give more than 0"),
        ("$0.00", "A limit of $0.00 would stop every answer"),
        ("abc", "“abc” is not an amount: write USD a month as a number with at most two decimals"),
        ("12.505", "“12.505” is not an amount"),
        (".5", "“.5” is not an amount"),
        ("1e3", "“1e3” is not an amount"),
        ("$", "“$” is not an amount"),
        ("500k", "“500k” is not an amount"),  # tokens need the word `tokens`
        # A decimal comma is not read as a thousands separator (it would make 12,50 $1,250).
        ("12,50", "“12,50” is not an amount"),
        ("1,0000", "“1,0000” is not an amount"),
        ("1,5M tokens", "“1,5M” is not a number of tokens"),
        ("1000000001", "1000000001 is more than a limit can be (at most $1,000,000,000)"),
        ("0 tokens", "“0” tokens: give a whole number above 0"),
        ("-5 tokens", "“-5” is not a number of tokens: write it as `2000000`, `500k` or `2M`"),
        ("1.2345k tokens", "“1.2345k” tokens: give a whole number above 0"),
        ("1.5 tokens", "“1.5” tokens: give a whole number above 0"),
        ("abc tokens", "“abc” is not a number of tokens"),
        (f"{MAX_TOKENS + 1} tokens", "tokens is more than a limit can be"),
        ("50 60", "Give one amount in USD only, not “50” and “60”"),
        ("2M tokens 3M tokens", "Give one token limit only"),
        ("2Mtokens 3Mtokens", "Give one token limit only"),
        ("2M tokens 3Mtokens", "Give one token limit only"),
        ("tokens", "“tokens” is not an amount"),
    ],
)
def test_bad_amounts_are_named(text: str, says: str) -> None:
    assert says in refusal(f"set workspace {text}")


def test_a_missing_amount_asks_for_one() -> None:
    assert refusal("set workspace").startswith(
        "Give the limit: an amount in USD a month, for example `50`, and/or tokens, "
        "for example `2M tokens`."
    )
    assert refusal("set channel <#C0123|support>").startswith("Give the limit")
    assert refusal("set user <@U0123|ana>").startswith("Give the limit")


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("set workspace 5", "workspace"),
        ("set WORKSPACE 5", "workspace"),
        ("set default-user 5", "default_user"),
        ("set default_user 5", "default_user"),
        ("set default 5", "default_user"),
    ],
)
def test_scopes_without_a_target(text: str, scope: str) -> None:
    assert parse(text) == BudgetCommand("set", scope, None, Decimal(5))


def test_scopes_with_a_target_keep_it_as_written() -> None:
    assert parse("set channel <#C0123|support> 5") == BudgetCommand(
        "set", "channel", "<#C0123|support>", Decimal(5)
    )
    assert parse("set user <@U0123|ana> 5") == BudgetCommand(
        "set", "user", "<@U0123|ana>", Decimal(5)
    )
    assert parse("set member <@U0123> 1M tokens") == BudgetCommand(
        "set", "user", "<@U0123>", None, 1_000_000
    )


def test_clear() -> None:
    assert parse("clear workspace") == BudgetCommand("clear", "workspace")
    assert parse("clear default-user") == BudgetCommand("clear", "default_user")
    assert parse("remove channel <#C0123>") == BudgetCommand("clear", "channel", "<#C0123>")
    assert parse("clear user <@U0123>") == BudgetCommand("clear", "user", "<@U0123>")
    assert "`budget clear` takes no amount: “5”" in refusal("clear workspace 5")
    assert "`budget clear` takes no amount: “5”" in refusal("clear channel <#C0123> 5")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("set", "`budget set` needs a scope: workspace, channel, user or default-user."),
        ("clear", "`budget clear` needs a scope"),
        ("set team 5", "“team” is not a budget scope: use workspace, channel, user or default"),
        ("set 50", "“50” is not a budget scope"),
        ("set channel", "Name the channel after `channel`, for example `/usage budget set"),
        ("set user", "Name the user after `user`, for example `/usage budget set user @ana 20`."),
        ("clear user", "Name the user after `user`, for example `/usage budget clear user @ana`."),
        # The amount was given, the target was not: say which is missing.
        ("set channel 50", "Name the channel after `channel`"),
        ("set channel $50", "Name the channel after `channel`"),
        ("set channel 2M tokens", "Name the channel after `channel`"),
        ("set channel 2Mtokens", "Name the channel after `channel`"),
        ("set user 20", "Name the user after `user`"),
        ("set user -5", "Name the user after `user`"),
        ("frob", "I don't understand “frob” after `budget`"),
        ("show everything", "`budget show` takes nothing after it"),
    ],
)
def test_missing_or_unknown_words_are_named(text: str, says: str) -> None:
    assert says in refusal(text)


def test_help_is_the_syntax() -> None:
    said = refusal("help")
    assert said.startswith("`/usage budget` shows the limits; admins change them with")
    assert "`/usage budget set channel #support 50`" in said
    assert "`2M tokens`" in said


@pytest.mark.parametrize("target", ["#x", "#support", "x", "C0123|x", "<#nope>"])
def test_a_channel_that_is_not_a_link_is_refused_before_anything_is_read(target: str) -> None:
    # An unbound session factory fails on first use: the answer comes before any query.
    service = BudgetService(sessionmaker(), None)
    with pytest.raises(BudgetError) as raised:
        service.operator("T0001", ["set", "channel", target, "50"])
    assert str(raised.value) == (
        f"I can't tell which channel “{target}” is: give its channel id, such as C012ABCDEF "
        "(in Slack: the channel's name → About, at the bottom), for example "
        "`python -m bot budget --team T012ABCDEF set channel C012ABCDEF 50`."
    )


def test_a_name_is_no_member_id_without_slack() -> None:
    service = BudgetService(sessionmaker(), None)
    with pytest.raises(BudgetError) as raised:
        service.operator("T0001", ["set", "user", "@ana", "50"])
    assert str(raised.value).startswith("“@ana” is not a Slack member id: give one such as")
