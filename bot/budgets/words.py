"""Budgets in words: the refusal a thread is told, the 80 % notices, limits and spends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from bot.usage.figures import format_usd
from db.totals import Tally

if TYPE_CHECKING:
    from bot.budgets.gate import Limit


@dataclass(frozen=True)
class Reached:
    """A limit that refuses a turn: what it is, what was spent, and how it was reached."""

    limit: Limit
    spent: Tally
    reached: Literal["usd", "tokens"]
    # Not reached yet, but the turns running now may take the rest.
    busy: bool = False


@dataclass(frozen=True)
class Setter:
    """Who set a limit: their Slack id (None: from the shell) and the name Slack gave them."""

    slack_user_id: str | None
    name: str | None = None


def format_limit(limit_usd: Decimal | None, limit_tokens: int | None) -> str:
    """`$50.00`, `2,000,000 tokens`, or both joined with "and"."""
    parts = []
    if limit_usd is not None:
        parts.append(f"${limit_usd:,.2f}")
    if limit_tokens is not None:
        parts.append(f"{limit_tokens:,} tokens")
    return " and ".join(parts)


def format_spent(spent: Tally) -> str:
    """`$12.34 and 1,234 tokens`."""
    return f"{format_usd(spent.cost_usd)} and {spent.tokens_total:,} tokens"


def resets_on(month: date) -> date:
    """The first day of the month after `month`."""
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def scope_words(scope: str, scope_id: str, *, yours: bool = False) -> str:
    """How a budget's scope reads in a sentence."""
    if scope == "workspace":
        return "this workspace's monthly limit"
    if scope == "channel":
        return f"<#{scope_id}>'s monthly limit"
    if scope == "default_user":
        return "the monthly limit each member has" if not yours else "your monthly limit"
    return "your monthly limit" if yours else f"the monthly limit of <@{scope_id}>"


def set_by_words(set_by: str | None) -> str:
    """`set by <@U123>` (in a private notice), or who runs Switchboard (set from the shell)."""
    return f"set by <@{set_by}>" if set_by else "set by whoever runs Switchboard"


def refusal_text(refused: Reached, month: date, *, setter: Setter, again: bool = False) -> str:
    """What a refused turn's thread (or author) is told.

    Who set the limit is named in plain text, never as an @-mention: a mention notifies,
    and a busy thread over its limit would notify its admin at every message. Who set it and
    whom to ask are said once per thread a month: `again` (an earlier turn of the thread was
    refused this month) leaves them out.
    """
    limit, spent = refused.limit, refused.spent
    amount = (
        f"${limit.usd:,.2f}"
        if refused.reached == "usd" and limit.usd is not None
        else f"{limit.tokens:,} tokens"
    )
    used = (
        format_usd(spent.cost_usd) if refused.reached == "usd" else f"{spent.tokens_total:,} tokens"
    )
    whose = scope_words(limit.scope, limit.scope_id, yours=True)
    state = "is nearly reached" if refused.busy else ("is still reached" if again else "is reached")
    tail = (
        ", and answers being written right now may use the rest. Try again in a minute or two."
        if refused.busy
        else "."
    )
    resets = f"It resets on {resets_on(month):%-d %B %Y} (UTC)."
    if again:
        return f"Not answered: {whose} of {amount} {state}: {used} spent{tail} {resets}"
    if setter.slack_user_id is None:
        by, ask = "set by whoever runs Switchboard", "an admin"
    elif setter.name:
        by, ask = f"set by {setter.name}", f"{setter.name} or another admin"
    else:
        by, ask = "set by an admin", "an admin"
    return (
        f"Not answered: {whose} of {amount} ({by}) {state}: {used} spent in "
        f"{month:%B %Y}{tail} {resets} To raise it, ask {ask} (`/usage budget`)."
    )


def percent_used(limit: Limit, spent: Tally) -> int | None:
    """How much of the limit is spent, in whole percent (the larger of USD and tokens)."""
    shares = []
    if limit.usd:
        shares.append(spent.cost_usd / limit.usd)
    if limit.tokens:
        shares.append(Decimal(spent.tokens_total) / limit.tokens)
    return round(max(shares) * 100) if shares else None


def notice_text(limit: Limit, spent: Tally, month: date, *, personal: bool) -> str:
    percent = percent_used(limit, spent)
    limit_words = format_limit(limit.usd, limit.tokens)
    reset = f"{resets_on(month):%-d %B %Y}"
    if personal:
        by = set_by_words(limit.set_by)
        return (
            f"Heads-up: you have used {percent}% of your monthly Switchboard limit "
            f"({format_spent(spent)} of {limit_words}, {by}). Once it is reached I "
            f"stop answering you until it resets on {reset} (UTC)."
        )
    whose = scope_words(limit.scope, limit.scope_id)
    return (
        f"Heads-up: {percent}% of {whose} is used ({format_spent(spent)} of {limit_words}). "
        f"Once it is reached I stop answering there until it resets on {reset} (UTC); "
        "`/usage budget` shows every limit."
    )
