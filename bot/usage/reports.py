"""Usage and cost reports: requests, tokens, cost and speed by model, user, channel and day."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from bot.members.directory import Member, NotOneMember, UserDirectory, display_name, only_one
from bot.usage.export import CSV_COLUMNS, report_csv
from bot.usage.figures import Glance, Money, glance
from bot.usage.request import (
    EXAMPLES,
    MAX_DAYS,
    Period,
    UsageError,
    UsageRequest,
    parse_request,
)
from db import members, tool_calls, usage_lookups, usage_queries
from db.tool_calls import ToolStats
from db.totals import Tally
from db.usage_lookups import Ratings
from db.usage_queries import Breakdown, UsageFilter

_Key = TypeVar("_Key")
# The CSV export lives in bot.usage.export; it is imported from here too.
__all__ = ["CSV_COLUMNS", "DMS", "UsageLine", "UsageReport", "UsageService", "report_csv"]
# The key and name of one line for every direct message with the bot: a DM's channel id
# names nothing a reader knows, and each person's own line is under the members.
DMS = "DMs"


@dataclass(frozen=True)
class UsageLine:
    """One row of a report: a model, user, channel or day (or the total) and its figures."""

    key: str
    label: str
    tally: Tally
    median_ms: float | None = None
    p95_ms: float | None = None
    # Feedback on the answers: counted for the total and by model only (None elsewhere).
    ratings: Ratings | None = None

    @property
    def rated(self) -> int:
        """How many answers were rated (0 where ratings are not counted)."""
        return self.ratings.rated if self.ratings is not None else 0

    @property
    def share_positive(self) -> float | None:
        """The share of rated answers rated positively, 0..1; None when none was rated."""
        if self.ratings is None or not self.ratings.rated:
            return None
        return self.ratings.positive / self.ratings.rated

    @property
    def cost_per_positive(self) -> Decimal | None:
        """The priced cost divided by the answers rated positively; None when there are none."""
        if self.ratings is None or not self.ratings.positive:
            return None
        if self.tally.unpriced == self.tally.requests:
            return None  # no price known: not free
        return self.tally.cost_usd / self.ratings.positive


@dataclass(frozen=True)
class UsageReport:
    """A usage report, ready to render; users and channels are sorted by cost, then tokens."""

    period: Period
    team_id: str | None
    total: UsageLine
    models: list[UsageLine]
    users: list[UsageLine]
    channels: list[UsageLine]
    days: list[UsageLine]
    # Filters as shown to people, e.g. ["<@U123>", "model gpt-4o"].
    filters: list[str] = field(default_factory=list)
    # Set when a non-admin asked: the report covers only their own usage.
    own_only: bool = False
    # Whether the report is narrowed to one person or one channel (a top list would be moot).
    one_user: bool = False
    one_channel: bool = False
    csv: bool = False
    # Calls, errors and p95 duration per MCP tool, most called first (none: no tool was used).
    tools: list[ToolStats] = field(default_factory=list)

    def money(self) -> Money:
        """One way to write every amount of this report, so that its parts add up."""
        return Money.for_values(self.money_values())

    def money_values(self) -> list[Decimal]:
        """The amounts the report shows: its lines' costs (the days' only for the busiest),
        and what a 👍 answer cost."""
        lines = [self.total, *self.models, *self.users, *self.channels]
        values = [line.tally.cost_usd for line in lines]
        values += [cost for line in lines if (cost := line.cost_per_positive) is not None]
        view = self.glance()
        if view is not None:
            values += [cost for _, _, cost in view.busiest]
        return values

    def glance(self) -> Glance | None:
        """The period on one line (a bar a day) and its busiest days; None if it is empty."""
        return glance(
            [(date.fromisoformat(line.key), line.tally.requests, line.tally.cost_usd)
             for line in self.days]
        )  # fmt: skip


class UsageService:
    """Builds usage reports for workspace members, admins and operators."""

    def __init__(self, sessions: sessionmaker[Session], users: UserDirectory) -> None:
        self._sessions = sessions
        self._users = users

    def report_for(
        self, team_id: str, slack_user_id: str, *, text: str, now: datetime | None = None
    ) -> UsageReport:
        """The report `/usage TEXT` asks for, as the caller may see it; UsageError otherwise."""
        request = parse_request(text, now=now or datetime.now(UTC))
        # Read the caller first: it may ask Slack, which must not happen inside a transaction.
        caller = self._users.member(team_id, slack_user_id)
        named = self._users.named(team_id, request.user_name) if request.user_name else []
        with self._sessions() as session:
            user_id, user_label = self._resolve_user(session, caller, request, named)
            own_only = not caller.is_admin
            if request.channel_id and not usage_lookups.has_usage(
                session, team_id, user_id=user_id, channel_id=request.channel_id
            ):
                who = "you have not" if own_only else "nobody has"
                raise UsageError(
                    f"No usage recorded in {_channel_label(request)}: {who} used Switchboard "
                    f"there. Try another channel, {EXAMPLES}."
                )
            if request.model and not usage_lookups.has_usage(session, team_id, model=request.model):
                known = usage_lookups.models_used(
                    session, team_id, since=request.period.end - timedelta(days=MAX_DAYS)
                )
                listed = ", ".join(f"`{name}`" for name in known) or "none yet"
                raise UsageError(
                    f"No usage recorded for model `{request.model}` in this workspace. "
                    f"Models used in the last year: {listed}. For example `/usage model "
                    f"{known[0] if known else 'gpt-4o'}`."
                )
            usage = _usage_filter(
                request.period,
                team_id=team_id,
                user_ids=None if user_id is None else (user_id,),
                channel_id=request.channel_id,
                model=request.model,
            )
            filters = [label for label in (user_label, _channel_label(request)) if label]
            if request.model:
                filters.append(f"model {request.model}")
        report = self._build(usage, request.period, filters)
        return replace(
            report,
            own_only=own_only,
            one_user=user_id is not None,
            one_channel=request.channel_id is not None,
            csv=request.csv,
        )

    def report(
        self,
        period: Period,
        *,
        team_id: str | None = None,
        slack_user_id: str | None = None,
        model: str | None = None,
    ) -> UsageReport:
        """An operator's report: any workspace or all of them; UsageError for an unknown user."""
        with self._sessions() as session:
            user_ids = None
            filters = []
            if slack_user_id is not None:
                user_ids = tuple(members.user_ids_for(session, slack_user_id, team_id=team_id))
                if not user_ids:
                    where = f"workspace {team_id}" if team_id else "any workspace"
                    raise UsageError(
                        f"No usage recorded for user {slack_user_id} in {where}: check the "
                        "Slack member id (profile → ⋮ → Copy member ID), for example U012ABCDEF."
                    )
                filters.append(f"user {slack_user_id}")
            if model is not None:
                filters.append(f"model {model}")
        usage = _usage_filter(period, team_id=team_id, user_ids=user_ids, model=model)
        report = self._build(usage, period, filters)
        return replace(report, one_user=user_ids is not None)

    def summary(self, period: Period, *, team_id: str, user_id: int | None = None) -> UsageReport:
        """A workspace's report for `period`, or one member's (their `users.id`), unchecked."""
        usage = _usage_filter(
            period, team_id=team_id, user_ids=None if user_id is None else (user_id,)
        )
        return replace(self._build(usage, period, []), one_user=user_id is not None)

    def _resolve_user(
        self, session: Session, caller: Member, request: UsageRequest, named: list[Member]
    ) -> tuple[int | None, str | None]:
        """The users.id the report is limited to (None: everyone), and how to show it."""
        is_self = request.slack_user_id == caller.slack_user_id or (
            len(named) == 1 and named[0].id == caller.id
        )
        asks_other = bool(request.slack_user_id or request.user_name) and not is_self
        if not caller.is_admin:
            # Whether someone else exists is not a member's business either: one answer for all.
            if request.everyone:
                raise UsageError(
                    "Only workspace admins can see the whole workspace's usage. "
                    "`/usage` on its own shows yours, for example `/usage 7d`."
                )
            if asks_other:
                raise UsageError(
                    "Only workspace admins can see other people's usage. "
                    "`/usage` on its own shows yours, for example `/usage 7d`."
                )
            return caller.id, None
        if request.me or is_self:
            return caller.id, f"<@{caller.slack_user_id}>"
        if request.slack_user_id is not None:
            ids = members.user_ids_for(session, request.slack_user_id, team_id=caller.team_id)
            if not ids:
                raise UsageError(
                    f"No usage recorded for <@{request.slack_user_id}>: they have not used "
                    f"Switchboard in this workspace. Pick someone who has, {EXAMPLES}."
                )
            return ids[0], f"<@{request.slack_user_id}>"
        if request.user_name is not None:
            try:
                one = only_one(named, shown=f"@{request.user_name}", example="`/usage 7d @someone`")
            except NotOneMember as exc:
                raise UsageError(str(exc)) from None
            return one.id, f"<@{one.slack_user_id}>"
        return None, None

    def _build(self, usage: UsageFilter, period: Period, filters: list[str]) -> UsageReport:
        with self._sessions() as session:
            usage_queries.room_to_hash(session)
            tallies = usage_queries.breakdown(session, usage)
            users = members.users_by_id(session, [key for key in tallies.by_user if key])
            ratings = usage_lookups.ratings_by_model(session, usage)
            tools = _tool_lines(session, usage)

        def user_line(key: int | None, tally: Tally) -> UsageLine:
            user = users.get(key) if key is not None else None
            if user is None:
                return UsageLine("", "(deleted user)", tally)
            return UsageLine(user.slack_user_id, display_name(user), tally)

        return UsageReport(
            period=period,
            team_id=usage.team_id,
            total=UsageLine(
                "",
                "Total",
                tallies.total,
                median_ms=usage_queries.percentile_ms(tallies.latency, 0.5),
                p95_ms=usage_queries.percentile_ms(tallies.latency, 0.95),
                ratings=_sum_ratings(ratings.values()),
            ),
            models=[
                UsageLine(name, name, tally, ratings=ratings.get(name, Ratings()))
                for name, tally in _ranked(tallies.by_model.items())
            ],
            users=[user_line(key, tally) for key, tally in _ranked(tallies.by_user.items())],
            channels=[
                UsageLine(key or "", key or "no channel", tally)
                for key, tally in _ranked(_dms_together(tallies.by_channel).items())
            ],
            days=_day_lines(period, tallies),
            filters=filters,
            tools=tools,
        )


def _tool_lines(session: Session, usage: UsageFilter) -> list[ToolStats]:
    """The report's tool section: each MCP tool's calls, errors and p95 duration."""
    return tool_calls.tool_stats(session, usage)


def _usage_filter(
    period: Period,
    *,
    team_id: str | None,
    user_ids: tuple[int, ...] | None,
    channel_id: str | None = None,
    model: str | None = None,
) -> UsageFilter:
    return UsageFilter(
        start=period.start,
        end=period.end,
        ends_now=period.ends_now,
        team_id=team_id,
        user_ids=user_ids,
        channel_id=channel_id,
        model=model,
    )


def _channel_label(request: UsageRequest) -> str | None:
    if request.channel_id is None:
        return None
    return DMS if request.channel_id.startswith("D") else f"<#{request.channel_id}>"


def _dms_together(by_channel: dict[str | None, Tally]) -> dict[str | None, Tally]:
    """The channels' tallies with every DM summed into one `DMS` line."""
    merged: dict[str | None, Tally] = {}
    for key, tally in by_channel.items():
        if key is not None and key.startswith("D"):
            key = DMS
        before = merged.get(key)
        merged[key] = tally if before is None else before + tally
    return merged


# ----- shaping the figures -----------------------------------------------------------------


def _ranked(items: Iterable[tuple[_Key, Tally]]) -> list[tuple[_Key, Tally]]:
    def biggest_first(item: tuple[_Key, Tally]) -> tuple[Decimal, int, int]:
        tally = item[1]
        return (-tally.cost_usd, -tally.tokens_total, -tally.requests)

    return sorted(items, key=biggest_first)


def _sum_ratings(ratings: Iterable[Ratings]) -> Ratings:
    rated = positive = 0
    for each in ratings:
        rated, positive = rated + each.rated, positive + each.positive
    return Ratings(rated=rated, positive=positive)


def _day_lines(period: Period, tallies: Breakdown) -> list[UsageLine]:
    return [
        UsageLine(str(day), str(day), tallies.by_day.get(day, Tally())) for day in period.days()
    ]
