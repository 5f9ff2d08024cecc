"""Queries on turns: queue one, claim some under a lease, renew, finish or give them back.

Who runs a turn is decided by the database alone, with leases: a claim is one UPDATE that
takes the oldest unfinished turn of each conversation whose earlier turns are all done, and
that nobody holds (queued, or its lease ran out). On PostgreSQL the candidates are read
`FOR UPDATE SKIP LOCKED`, so processes claiming at the same moment take different turns
instead of waiting on each other; SQLite runs one writer at a time, so the same statement is
just as safe there. Leases rather than locks held for the length of a turn: a turn lasts as
long as the model writes (minutes), and no transaction may stay open across a model call.

Lease times are the claiming process's clock. Hosts sharing a database keep their clocks
within milliseconds (NTP); leases last tens of seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

from sqlalchemy import and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from db.dialects import rowcount
from db.models import Budget, Conversation, Message, MessageFile, Turn, User

_earlier = aliased(Turn)
_CANDIDATES = (
    select(Turn.id)
    .where(
        Turn.state != "done",
        or_(
            Turn.state == "queued",
            and_(Turn.lease_until < bindparam("now"), Turn.lease_owner != bindparam("owner")),
        ),
        # One turn at a time per conversation, in the order the messages were stored.
        ~exists().where(
            _earlier.conversation_id == Turn.conversation_id,
            _earlier.state != "done",
            _earlier.id < Turn.id,
        ),
    )
    .order_by(Turn.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_CLAIM = (
    update(Turn)
    .where(Turn.id.in_(_CANDIDATES.scalar_subquery()))
    .values(
        state="running",
        lease_owner=bindparam("owner"),
        lease_until=bindparam("until"),
        attempts=Turn.attempts + 1,
    )
    .returning(Turn.id, Turn.attempts, Turn.reply_ts)
    .execution_options(synchronize_session=False)
)


# What became of a turn, stored in `turns.outcome` once it is done. A turn whose message was
# deleted after a crash left it running ends "deleted".
Ending = Literal["answered", "failed", "refused", "model_set", "expired", "deleted"]


class Claimed(NamedTuple):
    """A turn this process now holds."""

    id: int
    attempts: int  # this one included
    reply_ts: str | None  # set when an earlier attempt had started a reply


_ADD = insert(Turn).returning(Turn.id)


def add_turn(
    session: Session,
    *,
    message_id: int,
    conversation_id: int,
    owner: str | None = None,
    until: datetime | None = None,
) -> int:
    """Queue the answering of a stored message; the turn's id.

    With `owner`, the turn is claimed by it at once, leased until `until` (tests set up
    running turns this way).
    """
    values = {
        "message_id": message_id,
        "conversation_id": conversation_id,
        "state": "queued" if owner is None else "running",
        "lease_owner": owner,
        "lease_until": until,
        "attempts": 0 if owner is None else 1,
    }
    return session.execute(_ADD, values).scalar_one()


def claim(
    session: Session, *, owner: str, now: datetime, until: datetime, limit: int
) -> list[Claimed]:
    """Take up to `limit` turns that are free to run, leased to `owner` until `until`."""
    rows = session.execute(
        _CLAIM, {"owner": owner, "now": now, "until": until, "limit": limit}
    ).all()
    return sorted((Claimed(*row) for row in rows), key=lambda claimed: claimed.id)


def renew(session: Session, *, owner: str, ids: list[int], until: datetime) -> set[int]:
    """Extend the leases `owner` still holds; the ids it still held."""
    if not ids:
        return set()
    rows = session.execute(
        update(Turn)
        .where(Turn.id.in_(ids), Turn.lease_owner == owner, Turn.state == "running")
        .values(lease_until=until)
        .returning(Turn.id)
        .execution_options(synchronize_session=False)
    )
    return set(rows.scalars())


def set_reply_ts(session: Session, *, turn_id: int, owner: str, reply_ts: str) -> None:
    """Note where the turn's reply is being written, so a successor can close it."""
    session.execute(
        update(Turn)
        .where(Turn.id == turn_id, Turn.lease_owner == owner, Turn.state == "running")
        .values(reply_ts=reply_ts)
        .execution_options(synchronize_session=False)
    )


def finish(session: Session, *, turn_id: int, owner: str, outcome: Ending, now: datetime) -> bool:
    """Mark the turn done; False when `owner` no longer holds it (someone took it over)."""
    result = session.execute(
        update(Turn)
        .where(Turn.id == turn_id, Turn.lease_owner == owner, Turn.state == "running")
        .values(state="done", outcome=outcome, finished_at=now, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


def expired_leases(session: Session, *, owner: str, now: datetime) -> list[int]:
    """The running turns leased to `owner` whose lease ran out (nobody renews them)."""
    return list(
        session.scalars(
            select(Turn.id).where(
                Turn.state == "running", Turn.lease_owner == owner, Turn.lease_until < now
            )
        )
    )


def give_back(session: Session, *, owner: str, ids: list[int], refund: bool = False) -> list[int]:
    """Queue again the turns of `ids` that `owner` still holds; their ids.

    With `refund`, the attempt does not count (a deploy stopped it, not a failure).
    """
    if not ids:
        return []
    attempts = Turn.attempts - 1 if refund else Turn.attempts
    rows = session.execute(
        update(Turn)
        .where(Turn.id.in_(ids), Turn.lease_owner == owner, Turn.state == "running")
        .values(state="queued", lease_owner=None, lease_until=None, attempts=attempts)
        .returning(Turn.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(rows.scalars())


class Work(NamedTuple):
    """What running a turn needs to know about its message."""

    message_id: int
    text: str
    override: str | None
    slack_ts: str | None
    user_row_id: int | None
    slack_user_id: str | None
    conversation_id: int
    team_id: str
    channel_id: str
    thread_ts: str
    default_model: str
    stored_at: datetime
    origin: str  # `bot.conversations.turn.Origin`
    history: str  # `bot.conversations.turn.History`
    # Whether the thread has files up to this message, and the workspace any budget: most
    # turns need neither read (one transaction fewer each, and two a turn in a burst of
    # 300 that spent about 15 % of its time on them: README, "Bursts").
    has_files: bool
    has_budgets: bool


_earlier_message = aliased(Message)
_WORK = (
    select(
        Message.id,
        Message.content,
        Message.model,
        Message.slack_ts,
        Message.user_id,
        User.slack_user_id,
        Conversation.id,
        Conversation.team_id,
        Conversation.channel_id,
        Conversation.thread_ts,
        Conversation.default_model,
        Turn.created_at,
        Conversation.origin,
        Conversation.history,
        exists()
        .where(
            MessageFile.message_id == _earlier_message.id,
            _earlier_message.conversation_id == Turn.conversation_id,
            # As `db.files.conversation_files` reads them: by Slack ts, by id without one.
            or_(
                _earlier_message.id == Turn.message_id,
                _earlier_message.slack_ts < Message.slack_ts,
                and_(Message.slack_ts.is_(None), _earlier_message.id < Turn.message_id),
            ),
        )
        .label("has_files"),
        exists().where(Budget.team_id == Conversation.team_id).label("has_budgets"),
    )
    .join(Message, Message.id == Turn.message_id)
    .join(Conversation, Conversation.id == Turn.conversation_id)
    .outerjoin(User, User.id == Message.user_id)
    .where(Turn.id == bindparam("turn_id"))
)


def work(session: Session, turn_id: int) -> Work | None:
    """The message, its author and its conversation; None if the message was deleted."""
    row = session.execute(_WORK, {"turn_id": turn_id}).one_or_none()
    # `_make`, not `Work(*row)`: mypy cannot spread a Row typed past its tenth column.
    return None if row is None else Work._make(row)


def unfinished(session: Session) -> int:
    """How many turns are queued or running (for tests, benches and health)."""
    return session.scalar(select(func.count()).select_from(Turn).where(Turn.state != "done")) or 0


def queued(session: Session) -> int:
    """How many turns wait for a worker, in every process (for metrics)."""
    return session.scalar(select(func.count()).select_from(Turn).where(Turn.state == "queued")) or 0
