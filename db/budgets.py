"""Queries behind budgets: the limits, what is spent against them, and what running turns hold.

They take a Session and never commit. A budget check reads a handful of rows: the
workspace's budgets, one `usage_monthly` row per limit (and the workspace's, for the size of
an answer), and the few running turns; never `responses`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Integer,
    Result,
    String,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from db.dialects import insert_for, rowcount
from db.models import Budget, Conversation, Message, Turn, UsageMonthly, User
from db.totals import Tally

# The first key of PostgreSQL's two-key advisory locks that serialize the budget checks of
# one workspace (the second is a hash of its team id).
BUDGET_LOCK_CLASS = 0x5B0D


@dataclass(frozen=True)
class Held:
    """What one running turn holds against the budgets, and where it runs."""

    channel_id: str
    slack_user_id: str | None
    usd: Decimal
    tokens: int


def budgets_of(session: Session, team_id: str) -> list[Budget]:
    """The workspace's budgets: the workspace's, channels', members' and the default."""
    return list(
        session.scalars(
            select(Budget).where(Budget.team_id == team_id).order_by(Budget.scope, Budget.scope_id)
        )
    )


def set_budget(
    session: Session,
    *,
    team_id: str,
    scope: str,
    scope_id: str,
    limit_usd: Decimal | None,
    limit_tokens: int | None,
    set_by: str | None,
    month: date,
) -> None:
    """Create or replace one budget; its scope may be told again at 80 % this month."""
    statement = insert_for(session.get_bind().dialect.name, Budget.__table__).values(
        team_id=team_id,
        scope=scope,
        scope_id=scope_id,
        limit_usd=limit_usd,
        limit_tokens=limit_tokens,
        set_by=set_by,
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["team_id", "scope", "scope_id"],
            set_={
                "limit_usd": statement.excluded.limit_usd,
                "limit_tokens": statement.excluded.limit_tokens,
                "set_by": statement.excluded.set_by,
                "updated_at": func.now(),
            },
        )
    )
    # A new limit is a new threshold: its 80 % notice has not been sent.
    spend_scope = "user" if scope == "default_user" else scope
    conditions = [
        UsageMonthly.team_id == team_id,
        UsageMonthly.month == month,
        UsageMonthly.scope == spend_scope,
    ]
    if scope != "default_user":
        conditions.append(UsageMonthly.scope_id == scope_id)
    session.execute(update(UsageMonthly).where(*conditions).values(notified=False))


def clear_budget(session: Session, *, team_id: str, scope: str, scope_id: str) -> bool:
    """Remove one budget; whether there was one."""
    result = session.execute(
        delete(Budget).where(
            Budget.team_id == team_id, Budget.scope == scope, Budget.scope_id == scope_id
        )
    )
    return bool(rowcount(result))


def lock_team(session: Session, team_id: str) -> None:
    """Serialize this workspace's budget checks until the transaction ends.

    PostgreSQL: a transaction-level advisory lock. SQLite runs one writer at a time, and the
    sessions that write begin IMMEDIATE, so the transaction holds that lock already.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(func.pg_advisory_xact_lock(BUDGET_LOCK_CLASS, func.hashtext(team_id)))
        )


def spent_and_held(
    session: Session,
    *,
    team_id: str,
    month: date,
    scopes: Sequence[tuple[str, str]],
    except_turn: int | None = None,
) -> tuple[dict[tuple[str, str], Tally], list[Held]]:
    """This month's spend of each (scope, scope_id), and what the other running turns hold.

    One statement, so both parts come from one snapshot: a turn that finishes meanwhile is
    counted once, as held or as spent, never in neither.
    """
    spent_rows = select(
        literal("spent").label("kind"),
        UsageMonthly.scope.label("a"),
        UsageMonthly.scope_id.label("b"),
        UsageMonthly.cost_usd.label("usd"),
        UsageMonthly.tokens_total.label("tokens"),
        UsageMonthly.tokens_completion.label("completion"),
        UsageMonthly.requests.label("requests"),
        UsageMonthly.errors.label("errors"),
        UsageMonthly.unpriced.label("unpriced"),
    ).where(
        UsageMonthly.team_id == team_id,
        UsageMonthly.month == month,
        or_(*(and_(UsageMonthly.scope == s, UsageMonthly.scope_id == i) for s, i in scopes)),
    )
    held_rows = (
        select(
            literal("held"),
            Conversation.channel_id,
            cast(User.slack_user_id, String),
            Turn.reserved_usd,
            Turn.reserved_tokens,
            cast(literal(0), Integer),
            cast(literal(0), Integer),
            cast(literal(0), Integer),
            cast(literal(0), Integer),
        )
        .join(Conversation, Conversation.id == Turn.conversation_id)
        # A turn whose message was deleted meanwhile still holds (for the workspace and the
        # channel: its author is no longer known).
        .outerjoin(Message, Message.id == Turn.message_id)
        .outerjoin(User, User.id == Message.user_id)
        .where(
            Turn.state == "running",
            Turn.reserved_tokens.is_not(None),
            Conversation.team_id == team_id,
            Turn.id != bindparam("except_turn"),
        )
    )
    spent: dict[tuple[str, str], Tally] = {}
    held: list[Held] = []
    # The two selects' column types differ (held ones may be NULL): mypy infers no union of them.
    rows: Result[*tuple[Any, ...]] = session.execute(
        union_all(spent_rows, held_rows), {"except_turn": except_turn or 0}
    )
    for kind, a, b, usd, tokens, completion, requests, errors, unpriced in rows:
        if kind == "spent":
            spent[(a, b)] = Tally(
                requests=int(requests),
                errors=int(errors),
                tokens_total=int(tokens),
                tokens_completion=int(completion),
                cost_usd=Decimal(usd or 0),
                unpriced=int(unpriced),
            )
        else:
            held.append(Held(a, b, Decimal(usd or 0), int(tokens or 0)))
    return spent, held


def hold(session: Session, *, turn_id: int, owner: str, usd: Decimal, tokens: int) -> bool:
    """Hold `usd` and `tokens` against the budgets while the turn runs; False if not ours."""
    result = session.execute(
        update(Turn)
        .where(Turn.id == turn_id, Turn.lease_owner == owner, Turn.state == "running")
        .values(reserved_usd=usd, reserved_tokens=tokens)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


def leased(session: Session, *, turn_id: int, owner: str) -> bool:
    """Whether `owner` still runs the turn (no other process took it over)."""
    mine = exists().where(Turn.id == turn_id, Turn.lease_owner == owner, Turn.state == "running")
    return bool(session.scalar(select(mine)))


def mark_notified(
    session: Session,
    *,
    team_id: str,
    month: date,
    scope: str,
    scope_id: str,
    usd_at: Decimal | None,
    tokens_at: int | None,
) -> Tally | None:
    """Mark the month's 80 % notice of a scope as sent, if the spend reached it and it was not.

    One conditional UPDATE: however many processes record turns at once, one of them gets
    the row back and sends the notice.
    """
    reached = []
    if usd_at is not None:
        reached.append(UsageMonthly.cost_usd >= usd_at)
    if tokens_at is not None:
        reached.append(UsageMonthly.tokens_total >= tokens_at)
    if not reached:
        return None
    row = session.execute(
        update(UsageMonthly)
        .where(
            UsageMonthly.team_id == team_id,
            UsageMonthly.month == month,
            UsageMonthly.scope == scope,
            UsageMonthly.scope_id == scope_id,
            UsageMonthly.notified.is_(False),
            or_(*reached),
        )
        .values(notified=True)
        .returning(UsageMonthly.cost_usd, UsageMonthly.tokens_total, UsageMonthly.unpriced)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        return None
    return Tally(tokens_total=int(row[1]), cost_usd=Decimal(row[0]), unpriced=int(row[2]))


def admins_of(session: Session, team_id: str) -> list[str]:
    """The Slack ids of the workspace's admins the bot knows of."""
    return list(
        session.scalars(
            select(User.slack_user_id)
            .where(User.team_id == team_id, User.is_admin.is_(True), User.is_active.is_(True))
            .order_by(User.id)
        )
    )


def refused_in_thread(
    session: Session, *, conversation_id: int, since: datetime, except_turn: int
) -> bool:
    """Whether another turn of the conversation was refused since `since` (its month began).

    A thread's messages by their (conversation, ts) index, and their turns by message id: a
    few rows, never `responses`.
    """
    earlier = exists().where(
        Message.conversation_id == conversation_id,
        Turn.message_id == Message.id,
        Turn.id != except_turn,
        Turn.outcome == "refused",
        Turn.finished_at >= since,
    )
    return bool(session.scalar(select(earlier)))


def member_name(session: Session, team_id: str, slack_user_id: str) -> str | None:
    """The name Slack gave a member (full name, else username), None when it is not known."""
    row = session.execute(
        select(User.full_name, User.username).where(
            User.team_id == team_id, User.slack_user_id == slack_user_id
        )
    ).one_or_none()
    if row is None:
        return None
    full_name, username = row
    # A row made before the profile was read holds the Slack id as its username.
    return full_name or (username if username and username != slack_user_id else None)
