"""Usage reports on a real database (SQLite and PostgreSQL): who sees what, and the figures."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from bot.members.directory import Profile, UserDirectory
from bot.usage.reports import CSV_COLUMNS, UsageReport, UsageService, report_csv
from bot.usage.request import Period, UsageError, last_days
from db import totals
from db.engine import make_engine, make_sessionmaker
from db.models import LATENCY_BOUNDS_MS, Response, User
from db.totals import Tally, latency_bucket
from tests.accounting import record_response
from tests.db.test_usage_queries import percentile_cont, within_a_bucket

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
TEAM, OTHER_TEAM = "T1", "T2"
ADMIN, MEMBER, QUIET = "UADMIN", "UMEMBER", "UQUIET"
MODELS = ("gpt-4o", "gpt-4o-mini", "llama-local")  # llama-local has no price: cost NULL


class Profiles:
    """A `ProfileSource` (Slack's users.info) with the admins given."""

    def __init__(self, admins: Iterable[str] = (ADMIN,)) -> None:
        self.admins = set(admins)

    def fetch(self, team_id: str, slack_user_id: str) -> Profile:
        return Profile(
            username=slack_user_id.lower(),
            full_name=f"Person {slack_user_id}",
            is_admin=slack_user_id in self.admins,
        )


@dataclass(frozen=True)
class Row:
    """One responses row as the tests insert it."""

    team: str
    user: str
    channel: str | None
    model: str
    at: datetime
    prompt: int
    completion: int
    cost: Decimal | None
    ms: int
    error: bool


def make_rows() -> list[Row]:
    """48 responses in the last 34 days in TEAM by three people, and 8 in OTHER_TEAM."""
    rows = []
    people = (ADMIN, MEMBER, QUIET, MEMBER)
    for i in range(48):
        model = MODELS[i % 3]
        prompt, completion = 100 + 7 * i, 20 + 3 * i
        rows.append(
            Row(
                team=TEAM,
                user=people[i % 4],
                channel=("C1", "C2", None)[i % 3 if i % 5 else 0],
                model=model,
                at=NOW - timedelta(hours=17 * i) - MINUTE,
                prompt=prompt,
                completion=completion,
                cost=None
                if model == "llama-local"
                else Decimal(prompt * 25 + completion * 100) / 10**7,
                ms=300 + (i * 389) % 4000,
                error=i % 7 == 3,
            )
        )
    for i in range(8):
        # The same member id in another workspace, with costs that would stand out.
        rows.append(
            Row(OTHER_TEAM, MEMBER, "C1", "gpt-4o", NOW - timedelta(hours=5 * i, minutes=1),
                9000, 9000, Decimal("5"), 99, False)
        )  # fmt: skip
    return rows


ROWS = make_rows()


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """The database with ROWS in it."""
    with sessions.begin() as session:
        ids: dict[tuple[str, str], int] = {}
        for row in ROWS:
            if (row.team, row.user) not in ids:
                user = User(team_id=row.team, slack_user_id=row.user, username=row.user.lower())
                session.add(user)
                session.flush()
                ids[row.team, row.user] = user.id
            record_response(
                session,
                team_id=row.team,
                user_id=ids[row.team, row.user],
                channel_id=row.channel,
                model_used=row.model,
                tokens_prompt=row.prompt,
                tokens_completion=row.completion,
                tokens_total=row.prompt + row.completion,
                cost_usd=row.cost,
                completion_time_ms=row.ms,
                status="error" if row.error else "ok",
                created_at=row.at,
            )
    return sessions


def service(
    sessions: sessionmaker[Session],
    *,
    admins: Iterable[str] = (ADMIN,),
    admin_user_ids: frozenset[str] = frozenset(),
) -> UsageService:
    return UsageService(
        sessions, UserDirectory(sessions, Profiles(admins), admin_user_ids=admin_user_ids)
    )


def expected(
    *,
    team: str = TEAM,
    days: int = 30,
    start: datetime | None = None,
    end: datetime = NOW,
    user: str | None = None,
    channel: str | None = None,
    model: str | None = None,
) -> Tally:
    """What the report should say, summed in Python from ROWS."""
    start = start or last_days(days, now=NOW).start
    chosen = [
        row
        for row in ROWS
        if row.team == team
        and start <= row.at < end
        and user in (None, row.user)
        and channel in (None, row.channel)
        and model in (None, row.model)
    ]
    return Tally(
        requests=len(chosen),
        errors=sum(row.error for row in chosen),
        tokens_prompt=sum(row.prompt for row in chosen),
        tokens_completion=sum(row.completion for row in chosen),
        tokens_total=sum(row.prompt + row.completion for row in chosen),
        cost_usd=sum((row.cost or Decimal(0) for row in chosen), Decimal(0)),
        unpriced=sum(row.cost is None for row in chosen),
    )


def ms_of(**criteria: object) -> list[int]:
    start = last_days(30, now=NOW).start
    return [
        row.ms
        for row in ROWS
        if row.team == TEAM
        and start <= row.at < NOW
        and all(getattr(row, k) == v for k, v in criteria.items())
    ]


def ask(sessions: sessionmaker[Session], text: str = "", *, user: str = ADMIN) -> UsageReport:
    return service(sessions).report_for(TEAM, user, text=text, now=NOW)


def refusal(sessions: sessionmaker[Session], text: str, *, user: str = ADMIN) -> str:
    with pytest.raises(UsageError) as problem:
        ask(sessions, text, user=user)
    return str(problem.value)


# --- who sees what -----------------------------------------------------------------------------


def test_admin_sees_the_whole_workspace(seeded: sessionmaker[Session]) -> None:
    report = ask(seeded)

    assert report.total.tally == expected()
    assert not report.own_only
    assert {line.key for line in report.users} == {ADMIN, MEMBER, QUIET}
    assert {line.key for line in report.models} == set(MODELS)
    assert {line.key for line in report.channels} == {"C1", "C2", ""}
    assert report.team_id == TEAM


def test_a_member_sees_only_their_own_usage_and_is_told_so(seeded: sessionmaker[Session]) -> None:
    report = ask(seeded, "", user=MEMBER)

    assert report.own_only
    assert report.total.tally == expected(user=MEMBER)
    assert [line.key for line in report.users] == [MEMBER]


def test_a_member_may_name_themselves(seeded: sessionmaker[Session]) -> None:
    assert ask(seeded, f"<@{MEMBER}|member> 7d", user=MEMBER).total.tally == expected(
        user=MEMBER, days=7
    )
    assert ask(seeded, "me", user=MEMBER).total.tally == expected(user=MEMBER)
    assert ask(seeded, "@UMember", user=MEMBER).total.tally == expected(user=MEMBER)


@pytest.mark.parametrize("text", [f"<@{ADMIN}>", "<@UNOBODY>", "@umember-typo", "@uadmin"])
def test_a_member_asking_for_someone_else_is_refused(
    seeded: sessionmaker[Session], text: str
) -> None:
    message = refusal(seeded, text, user=MEMBER)
    assert message.startswith("Only workspace admins can see other people's usage.")
    assert "for example `/usage 7d`" in message


def test_a_member_asking_for_the_workspace_is_refused(seeded: sessionmaker[Session]) -> None:
    message = refusal(seeded, "all 7d", user=MEMBER)
    assert message.startswith("Only workspace admins can see the whole workspace's usage.")


def test_admin_user_ids_are_admins_too(seeded: sessionmaker[Session]) -> None:
    usage = service(seeded, admins=(), admin_user_ids=frozenset({MEMBER}))
    report = usage.report_for(TEAM, MEMBER, text="", now=NOW)
    assert not report.own_only
    assert report.total.tally == expected()
    # The workspace admin is no admin for this directory: Slack said so.
    assert usage.report_for(TEAM, ADMIN, text="", now=NOW).own_only


def test_a_workspace_never_sees_another_workspaces_data(seeded: sessionmaker[Session]) -> None:
    usage = service(seeded, admins=(ADMIN, MEMBER))
    assert usage.report_for(TEAM, ADMIN, text="", now=NOW).total.tally == expected()
    # The same member id in both workspaces: each sees its own rows only.
    assert usage.report_for(TEAM, ADMIN, text=f"<@{MEMBER}>", now=NOW).total.tally == expected(
        user=MEMBER
    )
    other = usage.report_for(OTHER_TEAM, MEMBER, text="", now=NOW)
    assert other.total.tally == expected(team=OTHER_TEAM)
    assert other.total.tally.requests == 8
    # QUIET has no row in OTHER_TEAM, and OTHER_TEAM never used C2.
    with pytest.raises(UsageError, match="No usage recorded for <@UQUIET>"):
        usage.report_for(OTHER_TEAM, MEMBER, text=f"<@{QUIET}>", now=NOW)
    with pytest.raises(UsageError, match="No usage recorded in <#C2>"):
        usage.report_for(OTHER_TEAM, MEMBER, text="<#C2>", now=NOW)


# --- the figures -------------------------------------------------------------------------------


def test_every_breakdown_adds_up_to_the_total(seeded: sessionmaker[Session]) -> None:
    report = ask(seeded)
    total = report.total.tally
    assert total.requests > 30 and total.unpriced > 0 and total.errors > 0
    for lines in (report.models, report.users, report.channels, report.days):
        assert Tally.summed(line.tally for line in lines) == total


def test_each_line_matches_its_rows(seeded: sessionmaker[Session]) -> None:
    report = ask(seeded)
    for line in report.models:
        assert line.tally == expected(model=line.key)
    for line in report.users:
        assert line.tally == expected(user=line.key)
    for line in report.channels:
        if line.key:
            assert line.tally == expected(channel=line.key)
    no_channel = next(line for line in report.channels if line.key == "")
    assert no_channel.label == "no channel"
    assert no_channel.tally.requests == sum(
        1
        for row in ROWS
        if row.team == TEAM and row.channel is None and row.at >= report.period.start
    )


def test_one_line_per_utc_day_including_quiet_days(seeded: sessionmaker[Session]) -> None:
    report = ask(seeded, "2026-10-10..2026-10-20")  # the rows start on 2026-10-17
    assert [line.key for line in report.days] == [str(date(2026, 10, d)) for d in range(10, 21)]
    for line in report.days:
        day = datetime.fromisoformat(line.key).replace(tzinfo=UTC)
        assert line.tally == expected(start=day, end=day + timedelta(days=1))
    assert any(line.tally.requests == 0 for line in report.days)


def test_unpriced_requests_are_counted_not_costed(seeded: sessionmaker[Session]) -> None:
    llama = next(line for line in ask(seeded).models if line.key == "llama-local")
    assert llama.tally.cost_usd == 0
    assert llama.tally.unpriced == llama.tally.requests > 0
    gpt = next(line for line in ask(seeded).models if line.key == "gpt-4o")
    assert gpt.tally.unpriced == 0 and gpt.tally.cost_usd > 0


def test_lists_are_ordered_by_cost_then_tokens(seeded: sessionmaker[Session]) -> None:
    for lines in (ask(seeded).models, ask(seeded).users):
        keys = [(line.tally.cost_usd, line.tally.tokens_total) for line in lines]
        assert keys == sorted(keys, reverse=True)


def test_median_and_p95_completion_time(seeded: sessionmaker[Session]) -> None:
    # The totals keep a histogram of completion times, not the times: the figures are no
    # longer percentile_cont's exactly (they were before the totals), but within a bucket.
    report = ask(seeded)
    durations = ms_of()
    assert within_a_bucket(report.total.median_ms, percentile_cont(durations, 0.5))
    assert within_a_bucket(report.total.p95_ms, percentile_cont(durations, 0.95))
    filtered = ask(seeded, "model gpt-4o")
    durations = ms_of(model="gpt-4o")
    assert within_a_bucket(filtered.total.median_ms, percentile_cont(durations, 0.5))
    assert within_a_bucket(filtered.total.p95_ms, percentile_cont(durations, 0.95))
    assert filtered.total.median_ms != report.total.median_ms


@pytest.mark.parametrize("count", [1, 2, 3, 20, 21])
def test_percentiles_fall_in_the_bucket_of_the_exact_value(
    sessions: sessionmaker[Session], count: int
) -> None:
    durations = [(i * 7919) % 1000 for i in range(count)]
    with sessions.begin() as session:
        for ms in durations:
            record_response(
                session,
                team_id=TEAM,
                model_used="m",
                completion_time_ms=ms,
                created_at=NOW - MINUTE,
            )
    report = ask(sessions, "1d")
    for fraction, figure in ((0.5, report.total.median_ms), (0.95, report.total.p95_ms)):
        # The nearest rank: the ceil(pN)-th shortest time. percentile_cont interpolates between
        # two neighbours instead, which with a handful of requests may lie buckets apart (0 and
        # 919 ms give a median of 459.5): no histogram can tell that, so compare with the rank.
        exact = sorted(durations)[max(math.ceil(fraction * count), 1) - 1]
        bucket = latency_bucket(exact)
        lower = LATENCY_BOUNDS_MS[bucket - 1] if bucket else 0
        assert figure is not None
        assert lower <= figure <= LATENCY_BOUNDS_MS[bucket]
        assert within_a_bucket(figure, exact)


def test_an_empty_period_is_all_zeros(seeded: sessionmaker[Session]) -> None:
    report = ask(seeded, "2020-01-01..2020-01-31")
    assert report.total.tally == Tally()
    assert report.total.median_ms is None and report.total.p95_ms is None
    assert report.models == report.users == report.channels == []
    assert len(report.days) == 31


# --- whole days from the totals, cut days from the rows ------------------------------------------


def test_a_period_cut_mid_day_counts_each_row_once(sessions: sessionmaker[Session]) -> None:
    """Rows on both sides of every edge of `24h`: its start, the midnight between, its end."""
    start = NOW - timedelta(hours=24)  # 2026-11-19 12:00: a part of the 19th, the 20th whole
    midnight = datetime(2026, 11, 20, tzinfo=UTC)
    moments = [
        start - timedelta(microseconds=1),  # out
        start,  # in: the start is inclusive
        start + MINUTE,
        midnight - timedelta(microseconds=1),
        midnight,  # in: from the 20th's totals
        NOW - MINUTE,
    ]
    with sessions.begin() as session:
        user = User(team_id=TEAM, slack_user_id=ADMIN)
        session.add(user)
        session.flush()
        for number, at in enumerate(moments):
            record_response(
                session,
                team_id=TEAM,
                user_id=user.id,
                channel_id="C1",
                model_used="m",
                tokens_total=10**number,
                completion_time_ms=1000,
                created_at=at,
            )
    report = ask(sessions, "24h")
    assert report.total.tally.requests == 5
    assert report.total.tally.tokens_total == 111110  # every row but the first, each once
    assert [(line.key, line.tally.tokens_total) for line in report.days] == [
        ("2026-11-19", 1110),
        ("2026-11-20", 110000),
    ]
    for lines in (report.models, report.users, report.channels):
        assert [line.tally for line in lines] == [report.total.tally]
    assert report.total.median_ms is not None and within_a_bucket(report.total.median_ms, 1000)
    # No whole day at all: two parts of days, both read from the rows.
    cut = service(sessions).report(Period(start, midnight + HOUR, ""), team_id=TEAM)
    assert [(line.key, line.tally.tokens_total) for line in cut.days] == [
        ("2026-11-19", 1110),
        ("2026-11-20", 10000),
    ]
    assert cut.total.tally.requests == 4


def test_whole_days_come_from_the_totals_and_cut_days_from_the_rows(
    seeded: sessionmaker[Session],
) -> None:
    """Rows that only `responses` holds (as if the totals had missed them) show what is read."""
    with seeded.begin() as session:
        for model, at in (("missed-20th", NOW - HOUR), ("missed-19th", NOW - 13 * HOUR)):
            session.add(Response(team_id=TEAM, model_used=model, created_at=at))
    usage = service(seeded)

    def missed_in(report: UsageReport) -> set[str]:
        return {line.key for line in report.models if line.key.startswith("missed")}

    # Ends now: the 20th from its totals (nothing is recorded after now), so neither.
    assert missed_in(ask(seeded, "7d")) == set()
    assert ask(seeded, "7d").total.tally == expected(days=7)
    # 24h: the 19th from 12:00 on is read from the rows, the 20th from the totals.
    assert missed_in(ask(seeded, "24h")) == {"missed-19th"}
    # An end in the past and not at midnight: the 20th up to 11:30 is read from the rows, the
    # 19th (whole in this period) from the totals.
    past = Period(NOW - 72 * HOUR, NOW - 30 * MINUTE, "past")
    report = usage.report(past, team_id=TEAM)
    assert missed_in(report) == {"missed-20th"}
    assert report.total.tally.requests == expected(start=past.start, end=past.end).requests + 1
    # Past and at midnight: whole days only.
    midnights = Period(NOW - 84 * HOUR, NOW - 12 * HOUR, "17th to 19th")
    assert missed_in(usage.report(midnights, team_id=TEAM)) == set()


# --- filters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "criteria"),
    [
        ("24h", {"start": NOW - timedelta(hours=24)}),
        ("7d", {"days": 7}),
        ("2026-11-01..2026-11-15", {"start": datetime(2026, 11, 1, tzinfo=UTC),
                                    "end": datetime(2026, 11, 16, tzinfo=UTC)}),
        (f"<@{MEMBER}|member>", {"user": MEMBER}),
        ("<#C2|random>", {"channel": "C2"}),
        ("model gpt-4o-mini", {"model": "gpt-4o-mini"}),
        (f"7d <@{QUIET}> <#C1> model gpt-4o", {"days": 7, "user": QUIET, "channel": "C1",
                                                "model": "gpt-4o"}),
        ("@uquiet model llama-local", {"user": QUIET, "model": "llama-local"}),
    ],
)  # fmt: skip
def test_filters(seeded: sessionmaker[Session], text: str, criteria: dict[str, Any]) -> None:
    report = ask(seeded, text)
    assert report.total.tally == expected(**criteria)
    assert Tally.summed(line.tally for line in report.days) == report.total.tally


def test_filters_are_named_in_the_report(seeded: sessionmaker[Session]) -> None:
    report = ask(seeded, f"<@{MEMBER}> <#C1> model gpt-4o")
    assert report.filters == [f"<@{MEMBER}>", "<#C1>", "model gpt-4o"]
    assert report.one_user and report.one_channel


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("<@UNOBODY|nobody>", "No usage recorded for <@UNOBODY>: they have not used Switchboard"),
        ("@nobody", "I can't tell who @nobody is: nobody who used Switchboard is called that"),
        ("<#CNOWHERE>", "No usage recorded in <#CNOWHERE>: nobody has used Switchboard there"),
        ("model gpt-5", "No usage recorded for model `gpt-5` in this workspace. Models used in "
                        "the last year: `gpt-4o`, `gpt-4o-mini`, `llama-local`."),
    ],
)  # fmt: skip
def test_unknown_names_are_named(seeded: sessionmaker[Session], text: str, names: str) -> None:
    message = refusal(seeded, text)
    assert names in message
    assert "for example" in message.lower()


def test_a_member_is_told_when_they_never_used_a_channel(seeded: sessionmaker[Session]) -> None:
    message = refusal(seeded, "<#CNOWHERE>", user=MEMBER)
    assert "No usage recorded in <#CNOWHERE>: you have not used Switchboard there" in message


def test_bad_input_is_refused_before_anything_is_read(seeded: sessionmaker[Session]) -> None:
    assert "longer than a year" in refusal(seeded, "2025-01-01..2026-06-01")
    assert "I don't understand “yesterday”" in refusal(seeded, "yesterday")


# --- operators' reports ------------------------------------------------------------------------


def test_operator_report_spans_every_workspace_unless_told(seeded: sessionmaker[Session]) -> None:
    usage = service(seeded)
    period = last_days(30, now=NOW)
    everything = usage.report(period)
    assert everything.team_id is None
    assert everything.total.tally == Tally.summed([expected(), expected(team=OTHER_TEAM)])
    assert usage.report(period, team_id=TEAM).total.tally == expected()
    both = usage.report(period, slack_user_id=MEMBER)
    assert both.total.tally == Tally.summed([expected(user=MEMBER), expected(team=OTHER_TEAM)])
    only = usage.report(period, team_id=OTHER_TEAM, slack_user_id=MEMBER, model="gpt-4o")
    assert only.total.tally == expected(team=OTHER_TEAM)
    with pytest.raises(UsageError, match="No usage recorded for user UNOBODY in any workspace"):
        usage.report(period, slack_user_id="UNOBODY")


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_has_a_row_for_the_total_and_every_line(seeded: sessionmaker[Session]) -> None:
    report = ask(seeded, "csv")
    assert report.csv
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert tuple(rows[0]) == CSV_COLUMNS
    sections = [row["section"] for row in rows]
    assert sections.count("total") == 1
    assert sections.count("model") == len(report.models) == 3
    assert sections.count("user") == len(report.users)
    assert sections.count("channel") == len(report.channels)
    assert sections.count("day") == 30
    total = rows[0]
    tally = expected()
    assert int(total["requests"]) == tally.requests
    assert int(total["tokens_total"]) == tally.tokens_total
    assert Decimal(total["cost_usd"]) == tally.cost_usd
    assert int(total["unpriced_requests"]) == tally.unpriced
    assert float(total["median_ms"]) == pytest.approx(report.total.median_ms, abs=0.05)
    for section in ("model", "user", "channel", "day"):
        chosen = [row for row in rows if row["section"] == section]
        assert sum(int(row["requests"]) for row in chosen) == tally.requests
        assert sum(Decimal(row["cost_usd"]) for row in chosen) == tally.cost_usd
    user = next(row for row in rows if row["section"] == "user" and row["key"] == MEMBER)
    assert user["name"] == "umember"


# --- PostgreSQL: the reports read the totals by index, and the rows of cut days only -----------


@pytest.mark.postgresql
@pytest.mark.parametrize("words", ["", "24h"])
def test_reports_read_the_totals_by_index_on_postgresql(
    seeded: sessionmaker[Session], engine: Engine, db_backend: str, words: str
) -> None:
    if db_backend != "postgresql":
        pytest.skip("the plans are PostgreSQL's")
    # The DBAPI's parameters, as psycopg2 takes them back in `exec_driver_sql`.
    statements: list[tuple[str, Any]] = []

    def capture(_c: object, _cur: object, sql: str, params: Any, *_args: object) -> None:
        if sql.lstrip().startswith("SELECT"):
            statements.append((sql, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        ask(seeded, words)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    totals_reads = [s for s in statements if "FROM usage_daily" in s[0]]
    rows_reads = [s for s in statements if "FROM responses" in s[0] and "feedback" not in s[0]]
    assert len(totals_reads) == 2  # the tallies and the completion-time histogram
    # Ending now, the default report reads no responses rows (only the ratings' join does);
    # 24h reads those of the 19th from 12:00 on, with the tallies and for the histogram.
    assert len(rows_reads) == (0 if words == "" else 2)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE responses"))
        connection.execute(text("VACUUM ANALYZE usage_daily"))
    with engine.connect() as connection:
        # Few rows make a table scan cheapest; take it off the menu to see which index serves.
        connection.execute(text("SET enable_seqscan = off"))
        for sql, params in totals_reads:
            plan = "\n".join(connection.exec_driver_sql("EXPLAIN " + sql, params).scalars())
            assert "Index Cond: ((day >= " in plan, plan
        connection.execute(text("SET enable_bitmapscan = off"))
        for sql, params in rows_reads:
            plan = "\n".join(connection.exec_driver_sql("EXPLAIN " + sql, params).scalars())
            assert "Index Only Scan using ix_responses_team_created" in plan, plan


@pytest.mark.postgresql
def test_days_are_utc_whatever_the_sessions_time_zone(db_url: str, db_backend: str) -> None:
    if db_backend != "postgresql":
        pytest.skip("SQLite has no session time zone")
    engine = make_engine(db_url, connect_args={"options": "-c TimeZone=Pacific/Auckland"})
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        for at in ("2026-11-10T23:30:00+00:00", "2026-11-11T00:30:00+00:00"):
            moment = datetime.fromisoformat(at)
            record_response(session, team_id=TEAM, model_used="m", created_at=moment)
    counted = ask(sessions, "2026-11-10..2026-11-11")
    with sessions.begin() as session:
        totals.rebuild(session)
    rebuilt = ask(sessions, "2026-11-10..2026-11-11")
    # A period cut mid-day reads rows for both days.
    cut = service(sessions).report(
        Period(datetime(2026, 11, 10, 12, tzinfo=UTC), datetime(2026, 11, 11, 12, tzinfo=UTC), "")
    )
    engine.dispose()
    for report in (counted, rebuilt, cut):
        assert [(line.key, line.tally.requests) for line in report.days] == [
            ("2026-11-10", 1),
            ("2026-11-11", 1),
        ]
