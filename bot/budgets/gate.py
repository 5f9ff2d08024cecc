"""Budgets: monthly limits in USD and tokens, checked before the model is called.

Limits apply to the workspace, to a channel, and to members (a named member's own limit, or
else the default per member); every limit that applies must have room. A turn is admitted
under a workspace-wide lock (one short transaction): it holds an estimate of its cost on its
turn row while it runs, and a turn is refused once what is spent plus what running turns hold
would pass a limit. A turn that starts with nothing else running is always let through while
the limit is not reached, so a limit is passed by one turn's cost at most, however many
processes answer at once, and an answer once started is never cut off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from bot.metrics.recorder import Metrics
from bot.usage.figures import format_usd
from db import budgets as queries
from db.budgets import Held
from db.models import Budget, utcnow
from db.totals import Tally, month_of

log = logging.getLogger(__name__)

NOTICE_SHARE = Decimal("0.8")
# A turn's completion is guessed from the workspace's average answer this month (refusals
# and failures, which wrote nothing, left out); before any, this.
DEFAULT_COMPLETION_TOKENS = 1_000
SCOPE_ORDER = ("user", "default_user", "channel", "workspace")


class Notifier(Protocol):
    """Where private notices go (a DM from the bot, in production)."""

    def notify(self, team_id: str, slack_user_id: str, text: str) -> None:
        """Tell one member something only they should see."""


@dataclass(frozen=True)
class Limit:
    """A budget as it applies to one turn; `key` is the spend it is checked against."""

    scope: str  # "workspace", "channel", "user" or "default_user"
    scope_id: str
    usd: Decimal | None
    tokens: int | None
    set_by: str | None
    key: tuple[str, str]

    @classmethod
    def of(cls, budget: Budget, *, member: str | None = None) -> Limit:
        """The limit of a budget row; a default per member is keyed on `member`."""
        spend_scope = "user" if budget.scope == "default_user" else budget.scope
        scope_id = (member or "") if budget.scope == "default_user" else budget.scope_id
        return cls(
            scope=budget.scope,
            scope_id=budget.scope_id,
            usd=budget.limit_usd,
            tokens=budget.limit_tokens,
            set_by=budget.set_by,
            key=(spend_scope, scope_id),
        )


@dataclass(frozen=True)
class Admission:
    """Whether a turn may call the model, and if not, what to tell whom."""

    admitted: bool
    limits: tuple[Limit, ...] = ()
    refusal: str | None = None
    # The refusal is about the person's own limit: told to them only.
    private: bool = False
    # The turn's lease was lost while it was checked.
    lost: bool = False


@dataclass(frozen=True)
class Notice:
    """A private 80 % notice for one member."""

    team_id: str
    slack_user_id: str
    text: str


def applicable(budgets: Iterable[Budget], *, channel_id: str, member: str | None) -> list[Limit]:
    """The limits a turn by `member` in `channel_id` is checked against, the personal first."""
    named = {b.scope_id: b for b in budgets if b.scope == "user"}
    found: list[Limit] = []
    for budget in budgets:
        if (
            budget.scope == "workspace"
            or (budget.scope == "channel" and budget.scope_id == channel_id)
            or (budget.scope == "user" and member and budget.scope_id == member)
        ):
            found.append(Limit.of(budget))
        elif budget.scope == "default_user" and member and member not in named:
            # A member's own limit replaces the default: it can be higher as well as lower.
            found.append(Limit.of(budget, member=member))
    return sorted(found, key=lambda limit: SCOPE_ORDER.index(limit.scope))


class BudgetGate:
    """Admits turns against the budgets, and finds the 80 % notices a recorded turn crossed."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        notifier: Notifier | None = None,
        admin_user_ids: frozenset[str] = frozenset(),
        now: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._notifier = notifier
        self._admin_user_ids = admin_user_ids
        self._now = now
        self._metrics = metrics or Metrics()  # metrics hook

    def admit(
        self,
        *,
        turn_id: int,
        owner: str,
        team_id: str,
        channel_id: str,
        member: str | None,
        prompt_tokens: int,
        price: Callable[[int, int], Decimal | None],
    ) -> Admission:
        """Check the turn against every limit that applies, and hold its estimate if admitted.

        `price(prompt_tokens, completion_tokens)` is the model's price in USD, None when the
        model has none (it then holds no dollars, only tokens).
        """
        month = month_of(self._now().date())
        with self._sessions() as session:
            budgets = queries.budgets_of(session, team_id)
        limits = applicable(budgets, channel_id=channel_id, member=member)
        if not limits:
            return Admission(True)  # the common case: one indexed read, nothing held
        with self._sessions.begin() as session:
            queries.lock_team(session, team_id)
            keys = sorted({("workspace", ""), *(limit.key for limit in limits)})
            spent, held = queries.spent_and_held(
                session, team_id=team_id, month=month, scopes=keys, except_turn=turn_id
            )
            completion = _expected_completion(spent.get(("workspace", ""), Tally()))
            usd = price(prompt_tokens, completion) or Decimal(0)
            tokens = prompt_tokens + completion
            for limit in limits:
                refusal = _refusal(limit, spent.get(limit.key, Tally()), held, usd, tokens, month)
                if refusal is not None:
                    if not queries.leased(session, turn_id=turn_id, owner=owner):
                        # Taken over meanwhile: the new owner checks it, and says what it finds.
                        return Admission(False, tuple(limits), lost=True)
                    private = limit.scope in ("user", "default_user")
                    self._metrics.budget_refused(team_id=team_id, scope=limit.scope)  # metrics hook
                    return Admission(False, tuple(limits), refusal, private=private)
            if not queries.hold(session, turn_id=turn_id, owner=owner, usd=usd, tokens=tokens):
                return Admission(False, tuple(limits), lost=True)
        return Admission(True, tuple(limits))

    def crossed(
        self, session: Session, *, team_id: str, limits: Sequence[Limit], at: datetime
    ) -> list[Notice]:
        """In the transaction that recorded a turn: the 80 % notices it is the first to cross."""
        notices: list[Notice] = []
        month = month_of(at.date())
        for limit in limits:
            spent = queries.mark_notified(
                session,
                team_id=team_id,
                month=month,
                scope=limit.key[0],
                scope_id=limit.key[1],
                usd_at=None if limit.usd is None else limit.usd * NOTICE_SHARE,
                tokens_at=None if limit.tokens is None else int(limit.tokens * NOTICE_SHARE),
            )
            if spent is None:
                continue
            personal = limit.scope in ("user", "default_user")
            if personal:
                recipients = [limit.key[1]]
            else:
                recipients = [limit.set_by] if limit.set_by else self._admins(session, team_id)
            text = _notice_text(limit, spent, month, personal=personal)
            notices.extend(Notice(team_id, who, text) for who in recipients)
        return notices

    def _admins(self, session: Session, team_id: str) -> list[str]:
        known = queries.admins_of(session, team_id)
        return known + sorted(self._admin_user_ids.difference(known))

    def send(self, notices: Iterable[Notice]) -> None:
        """Deliver notices, best effort: a notice that cannot be sent is logged, not retried."""
        for notice in notices:
            if self._notifier is None:
                continue
            try:
                self._notifier.notify(notice.team_id, notice.slack_user_id, notice.text)
            except Exception:
                log.warning("could not send a budget notice to %s", notice.slack_user_id)


def _expected_completion(workspace: Tally) -> int:
    # Refused and failed turns wrote nothing: counted in, a burst of refusals would make
    # answers look ever cheaper and let more turns run at once.
    answers = workspace.requests - workspace.errors
    if answers > 0 and workspace.tokens_completion:
        return max(1, workspace.tokens_completion // answers)
    return DEFAULT_COMPLETION_TOKENS


def _holds(limit: Limit, held: Held) -> bool:
    scope, scope_id = limit.key
    if scope == "workspace":
        return True
    if scope == "channel":
        return held.channel_id == scope_id
    return held.slack_user_id == scope_id


def _refusal(
    limit: Limit, spent: Tally, held: list[Held], usd: Decimal, tokens: int, month: date
) -> str | None:
    """Why `limit` refuses a turn that would cost about `usd` and `tokens`; None if it has room."""
    if limit.usd is not None and spent.cost_usd >= limit.usd:
        return _refused_text(limit, spent, month, reached="usd")
    if limit.tokens is not None and spent.tokens_total >= limit.tokens:
        return _refused_text(limit, spent, month, reached="tokens")
    running = [each for each in held if _holds(limit, each)]
    if not running:
        return None  # nothing else is spending: this turn may finish past the limit
    over_usd = limit.usd is not None and (
        spent.cost_usd + sum(each.usd for each in running) + usd > limit.usd
    )
    over_tokens = limit.tokens is not None and (
        spent.tokens_total + sum(each.tokens for each in running) + tokens > limit.tokens
    )
    if over_usd or over_tokens:
        return _refused_text(
            limit, spent, month, reached="usd" if over_usd else "tokens", busy=True
        )
    return None


# ----- words ---------------------------------------------------------------------------------


def format_limit(limit_usd: Decimal | None, limit_tokens: int | None) -> str:
    """`$50.00`, `2,000,000 tokens`, or both joined with "and"."""
    parts = []
    if limit_usd is not None:
        parts.append(format_usd(limit_usd))
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
        return f"the monthly limit of <#{scope_id}>"
    if scope == "default_user":
        return "the monthly limit each member has" if not yours else "your monthly limit"
    return "your monthly limit" if yours else f"the monthly limit of <@{scope_id}>"


def set_by_words(set_by: str | None) -> str:
    """`set by <@U123>`, or by an operator when set from the command line."""
    return f"set by <@{set_by}>" if set_by else "set by an operator"


def _refused_text(
    limit: Limit, spent: Tally, month: date, *, reached: str, busy: bool = False
) -> str:
    amount = (
        format_usd(limit.usd)
        if reached == "usd" and limit.usd is not None
        else f"{limit.tokens:,} tokens"
    )
    used = format_usd(spent.cost_usd) if reached == "usd" else f"{spent.tokens_total:,} tokens"
    whose = scope_words(limit.scope, limit.scope_id, yours=True)
    state = "is nearly reached" if busy else "is reached"
    tail = (
        ", and answers being written right now may use the rest. Try again in a minute or two."
        if busy
        else "."
    )
    by = set_by_words(limit.set_by)
    return (
        f"Not answered: {whose} of {amount} ({by}) {state}: {used} spent in "
        f"{month:%B %Y}{tail} It resets on {resets_on(month):%-d %B %Y} (UTC). "
        "An admin can change it with `/usage budget`."
    )


def percent_used(limit: Limit, spent: Tally) -> int | None:
    """How much of the limit is spent, in whole percent (the larger of USD and tokens)."""
    shares = []
    if limit.usd:
        shares.append(spent.cost_usd / limit.usd)
    if limit.tokens:
        shares.append(Decimal(spent.tokens_total) / limit.tokens)
    return round(max(shares) * 100) if shares else None


def _notice_text(limit: Limit, spent: Tally, month: date, *, personal: bool) -> str:
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
