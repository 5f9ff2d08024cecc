"""`/usage budget …` and `python -m bot budget …`: show, set and clear the monthly limits."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy.orm import Session, sessionmaker

from bot.budgets.fronts import SHELL, SLASH, Front
from bot.budgets.gate import Limit
from bot.budgets.words import format_limit, format_spent, percent_used, resets_on
from bot.members.directory import NotOneMember, UserDirectory, only_one
from bot.usage.figures import format_usd, plural
from db import budgets as queries
from db.models import Budget, utcnow
from db.totals import Tally, month_of

MAX_USD = Decimal("1000000000")
MAX_TOKENS = 10**15
_SCOPES = {
    "workspace": "workspace",
    "channel": "channel",
    "user": "user",
    "member": "user",
    "default-user": "default_user",
    "default_user": "default_user",
    "default": "default_user",
}
_USER_LINK = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_CHANNEL_LINK = re.compile(r"^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$")
_RAW_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_RAW_CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,}$")
_USD = re.compile(r"^\$?(\d+(?:\.\d{1,2})?)(?:\$|usd)?$", re.IGNORECASE)
_TOKENS = re.compile(r"^(\d+(?:\.\d+)?)([km]?)$", re.IGNORECASE)
_AMOUNT_LIKE = re.compile(r"^[$-]*\d[\d.,]*(?:\$|usd|[km]?(?:tokens?)?)$", re.IGNORECASE)
# Commas that group thousands (1,000,000); any other comma, such as the decimal comma of
# 12,50, is left in place so that the word is refused rather than read a hundred times larger.
_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])")


class BudgetError(ValueError):
    """The budget command cannot be done; the message says why and what would work."""


@dataclass(frozen=True)
class BudgetCommand:
    """What `budget …` asks for."""

    action: str  # "show", "set" or "clear"
    scope: str | None = None
    target: str | None = None  # the channel or member as written
    usd: Decimal | None = None
    tokens: int | None = None


def parse_budget(words: list[str], front: Front = SLASH) -> BudgetCommand:
    """Read the words after `budget`; BudgetError names the first one that makes no sense.

    The messages write the command as `front` does.
    """
    syntax = front.syntax
    if not words or words[0].lower() in ("show", "list"):
        if len(words) > 1:
            raise BudgetError(f"`budget show` takes nothing after it. {syntax}")
        return BudgetCommand("show")
    action = words[0].lower()
    if action in ("help", "?"):
        raise BudgetError(syntax)
    if action not in ("set", "clear", "remove"):
        raise BudgetError(f"I don't understand “{words[0]}” after `budget`. {syntax}")
    action = "clear" if action == "remove" else action
    if len(words) < 2:
        raise BudgetError(
            f"`budget {action}` needs a scope: workspace, channel, user or default-user. {syntax}"
        )
    scope = _SCOPES.get(words[1].lower())
    if scope is None:
        raise BudgetError(
            f"“{words[1]}” is not a budget scope: use workspace, channel, user or default-user. "
            f"{syntax}"
        )
    rest = words[2:]
    target = None
    if scope in ("channel", "user"):
        # `set channel 50`: the amount is there, the channel is not; reading 50 as the channel
        # would answer that the amount is missing.
        if not rest or (
            action == "set"
            and _AMOUNT_LIKE.match(rest[0])
            and (len(rest) == 1 or rest[1].lower() in ("tokens", "token"))
        ):
            example = front.channel if scope == "channel" else front.user
            raise BudgetError(
                f"Name the {scope} after `{scope}`, for example "
                f"`{front.command} {action} {scope} {example}{' 20' if action == 'set' else ''}`."
            )
        target, rest = rest[0], rest[1:]
    if action == "clear":
        if rest:
            raise BudgetError(f"`budget clear` takes no amount: “{' '.join(rest)}”. {syntax}")
        return BudgetCommand("clear", scope, target)
    usd, tokens = _amounts(rest, front)
    return BudgetCommand("set", scope, target, usd, tokens)


def _amounts(words: list[str], front: Front) -> tuple[Decimal | None, int | None]:
    usd: Decimal | None = None
    tokens: int | None = None
    index = 0
    while index < len(words):
        word = words[index]
        following = words[index + 1].lower() if index + 1 < len(words) else ""
        joined = word.lower().endswith("tokens") and len(word) > 6  # `2Mtokens`
        if following in ("tokens", "token") or joined:
            if tokens is not None:
                raise BudgetError("Give one token limit only, for example `2M tokens`.")
            tokens = _tokens(word[: -len("tokens")] if joined else word)
            index += 1 if joined else 2
            continue
        if usd is not None:
            raise BudgetError(f"Give one amount in USD only, not “{usd}” and “{word}”.")
        usd = _usd(word, front)
        index += 1
    if usd is None and tokens is None:
        raise BudgetError(
            "Give the limit: an amount in USD a month, for example `50`, and/or tokens, "
            "for example `2M tokens`."
        )
    return usd, tokens


def _ungrouped(word: str) -> str:
    return _THOUSANDS.sub(lambda match: match[0].replace(",", ""), word)


def _usd(word: str, front: Front) -> Decimal:
    if word.startswith("-") or word.startswith("$-"):
        raise BudgetError(
            f"“{word}” is negative: a limit is a positive amount in USD a month, for example "
            f"`50`. To remove a limit, use `{front.command} clear …`."
        )
    match = _USD.match(_ungrouped(word))
    if match is None:
        raise BudgetError(
            f"“{word}” is not an amount: write USD a month as a number with at most two "
            "decimals, for example `50` or `12.50`."
        )
    try:
        value = Decimal(match.group(1))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise BudgetError(f"“{word}” is not an amount.") from None
    if value <= 0:
        raise BudgetError(
            f"A limit of {word} would stop every answer: give more than 0, for example `50`. "
            f"To remove a limit, use `{front.command} clear …`."
        )
    if value > MAX_USD:
        raise BudgetError(f"{word} is more than a limit can be (at most ${MAX_USD:,}).")
    return value


def _tokens(word: str) -> int:
    match = _TOKENS.match(_ungrouped(word))
    if match is None:
        raise BudgetError(
            f"“{word}” is not a number of tokens: write it as `2000000`, `500k` or `2M`."
        )
    value = Decimal(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    if value != int(value) or value <= 0:
        raise BudgetError(f"“{word}” tokens: give a whole number above 0, for example `2M`.")
    if value > MAX_TOKENS:
        raise BudgetError(f"{word} tokens is more than a limit can be.")
    return int(value)


class BudgetService:
    """Shows and changes budgets for members, admins and operators."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        users: UserDirectory | None,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._users = users
        self._now = now

    def command(self, team_id: str, slack_user_id: str, words: list[str]) -> str:
        """The answer to `/usage budget WORDS` from a member; BudgetError for bad input."""
        request = parse_budget(words, SLASH)
        assert self._users is not None
        caller = self._users.member(team_id, slack_user_id)
        if not caller.is_admin:
            if request.action != "show":
                raise BudgetError(
                    "Only workspace admins can change budgets. `/usage budget` shows your own "
                    "monthly limit and what is left of it."
                )
            return self._own(team_id, slack_user_id)
        return self._run(team_id, request, SLASH, by=slack_user_id)

    def operator(self, team_id: str, words: list[str]) -> str:
        """The answer to `python -m bot budget --team T WORDS`: no Slack, no permission check."""
        return self._run(team_id, parse_budget(words, SHELL), SHELL, by=None)

    def _run(self, team_id: str, request: BudgetCommand, front: Front, *, by: str | None) -> str:
        if request.action == "show":
            return self._all(team_id, front)
        assert request.scope is not None
        scope_id = self._target(team_id, request, front)
        month = self.month()
        subject = _subject(request.scope, scope_id)
        with self._sessions.begin() as session:
            if request.action == "clear":
                if not queries.clear_budget(
                    session, team_id=team_id, scope=request.scope, scope_id=scope_id
                ):
                    return f"There is no limit on {subject}: nothing changed."
                return f"Removed the monthly limit on {subject}."
            queries.set_budget(
                session,
                team_id=team_id,
                scope=request.scope,
                scope_id=scope_id,
                limit_usd=request.usd,
                limit_tokens=request.tokens,
                set_by=by,
                month=month,
            )
        limit_words = format_limit(request.usd, request.tokens)
        line = f"Set: {subject} may use {limit_words} a month"
        if request.scope != "default_user":
            key = _key(request.scope, scope_id)
            spent = self._spent(team_id, month, [key])[key]
            line += f" ({format_spent(spent)} spent in {month:%B %Y} so far)"
        return f"{line}. It resets on {resets_on(month):%-d %B %Y} (UTC)."

    def month(self) -> date:
        """The first day of the current UTC month."""
        return month_of(self._now().date())

    def _target(self, team_id: str, request: BudgetCommand, front: Front) -> str:
        target = request.target
        if request.scope == "channel":
            assert target is not None
            if match := _CHANNEL_LINK.match(target):
                return match.group(1)
            if _RAW_CHANNEL.match(target) and self._users is None:
                return target
            raise BudgetError(
                f"I can't tell which channel “{target}” is: {front.name_a_channel}, for example "
                f"`{front.command} set channel {front.channel} 50`."
            )
        if request.scope == "user":
            assert target is not None
            return self._member(team_id, target)
        return ""

    def _member(self, team_id: str, target: str) -> str:
        match = _USER_LINK.match(target)
        slack_user_id = match.group(1) if match else None
        if slack_user_id is None and _RAW_USER.match(target):
            slack_user_id = target
        if slack_user_id is not None:
            if self._users is not None and not self._users.known(team_id, slack_user_id):
                raise BudgetError(
                    f"I can't find <@{slack_user_id}> in this workspace: pick the person from "
                    "the list Slack offers as you type @."
                )
            return slack_user_id
        if self._users is None:
            raise BudgetError(
                f"“{target}” is not a Slack member id: give one such as U012ABCDEF (their "
                "profile → ⋮ → Copy member ID)."
            )
        name = target.removeprefix("@")
        named = self._users.named(team_id, name) if name else []
        try:
            one = only_one(named, shown=f"“{target}”", example="`/usage budget set user @ana 20`")
        except NotOneMember as exc:
            raise BudgetError(str(exc)) from None
        return one.slack_user_id

    def _spent(
        self, team_id: str, month: date, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], Tally]:
        with self._sessions() as session:
            spent, _ = queries.spent_and_held(session, team_id=team_id, month=month, scopes=keys)
        return {key: spent.get(key, Tally()) for key in keys}

    def _all(self, team_id: str, front: Front) -> str:
        month = self.month()
        with self._sessions() as session:
            budgets = queries.budgets_of(session, team_id)
        header = (
            f"*Monthly budgets* ({month:%B %Y}; they reset on {resets_on(month):%-d %B %Y}, UTC)"
        )
        if not budgets:
            return f"{header}\nNo limits are set: Switchboard answers without one.\n{front.syntax}"
        keys = [("workspace", "")] + [
            _key(b.scope, b.scope_id) for b in budgets if b.scope != "default_user"
        ]
        spent = self._spent(team_id, month, sorted(set(keys)))
        lines = [header]
        for budget in sorted(budgets, key=_display_order):
            limit = Limit.of(budget)
            subject = _subject(budget.scope, budget.scope_id)
            line = f"• {subject[0].upper()}{subject[1:]}: "
            line += format_limit(limit.usd, limit.tokens)
            if budget.scope != "default_user":
                used = spent[_key(budget.scope, budget.scope_id)]
                line += f", {format_spent(used)} spent{_share(limit, used)}"
            line += (
                f" ({'set by <@' + budget.set_by + '>' if budget.set_by else 'set by an operator'})"
            )
            lines.append(line)
        unpriced = spent[("workspace", "")].unpriced
        if unpriced:
            lines.append(
                f"{plural(unpriced, 'answer')} this month came from models with no price and "
                f"{'is' if unpriced == 1 else 'are'} not in the USD figures (their tokens count "
                "against token limits)."
            )
        lines.append(
            "A member's own limit replaces the default; every other limit that applies must "
            "have room. " + front.syntax
        )
        return "\n".join(lines)

    def _own(self, team_id: str, slack_user_id: str) -> str:
        month = self.month()
        with self._sessions() as session:
            budgets = queries.budgets_of(session, team_id)
        mine = [b for b in budgets if b.scope == "user" and b.scope_id == slack_user_id]
        mine = mine or [b for b in budgets if b.scope == "default_user"]
        if not mine:
            return "You have no monthly limit of your own on Switchboard."
        limit = Limit.of(mine[0], member=slack_user_id)
        used = self._spent(team_id, month, [limit.key])[limit.key]
        left = []
        if limit.usd is not None:
            left.append(format_usd(max(limit.usd - used.cost_usd, Decimal(0))))
        if limit.tokens is not None:
            left.append(f"{max(limit.tokens - used.tokens_total, 0):,} tokens")
        text = (
            f"Your monthly limit is {format_limit(limit.usd, limit.tokens)}: you have used "
            f"{format_spent(used)} in {month:%B %Y}, and {' and '.join(left)} is left. It "
            f"resets on {resets_on(month):%-d %B %Y} (UTC)."
        )
        if used.unpriced and limit.usd is not None:
            text += (
                f" {plural(used.unpriced, 'answer')} of yours came from models with no price "
                f"and {'is' if used.unpriced == 1 else 'are'} not in the USD figure."
            )
        return text


def _key(scope: str, scope_id: str) -> tuple[str, str]:
    return ("user" if scope == "default_user" else scope, scope_id)


def _display_order(budget: Budget) -> tuple[int, str]:
    return (("workspace", "channel", "default_user", "user").index(budget.scope), budget.scope_id)


def _subject(scope: str, scope_id: str) -> str:
    if scope == "workspace":
        return "the workspace"
    if scope == "channel":
        return f"<#{scope_id}>"
    if scope == "default_user":
        return "each member (by default)"
    return f"<@{scope_id}>"


def _share(limit: Limit, spent: Tally) -> str:
    percent = percent_used(limit, spent)
    return "" if percent is None else f" ({percent}%)"
