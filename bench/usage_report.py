"""Usage report benchmark: time /usage reports over 1,000,000 and 10,000,000 responses.

    python bench/usage_report.py [--database-url URL] [--sizes 1000000,10000000] [--rows N]
                                 [--runs N] [--scratch NAME] [--keep] [--denser] [--time-only]

It creates its own scratch database (default switchboard_bench_usage) on the PostgreSQL server
named by the URL (default: BENCH_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/test),
migrates it with Alembic and, for each size in turn, adds rows with generate_series until
`responses` holds that many (two workspaces, 200 + 20 users who each talk in 1 to 3 of 50
channels, 10 models, skewed, at 11,111 a day: the first million over the last 90 days, each
further one over the 90 days before; with --denser every size is spread over the same 90
days instead, so that the traffic grows rather than the history), rebuilds the totals as
`python -m bot usage --rebuild-totals` does, and times the service calls /usage makes. It
prints how long each fill, each rebuild and each report took. The scratch database is dropped
at the end unless --keep is given; no other database is touched. --time-only times the reports
again on a scratch database kept by an earlier run (--keep), without filling it again (after
migrating it to this code's schema, if it is behind).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from bot.members.directory import Profile, UserDirectory
from bot.shell import migrations
from bot.usage.reports import UsageService
from bot.usage.request import last_days
from db import totals
from db.engine import make_engine, make_sessionmaker, normalize_url

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCRATCH = "switchboard_bench_usage"
DAYS = 90
DAYS_PER_ROW = DAYS / 1_000_000  # 11,111 responses a day
TEAM, OTHER_TEAM = "T0BENCH01", "T0BENCH02"
ADMIN = "U00000001"
MODELS = [
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.1-mini",
    "o4-mini",
    "claude-sonnet-4",
    "claude-haiku-3.5",
    "gemini-2.5-flash",
    "mistral-large",
    "llama-3.1-70b",  # unpriced: its cost stays NULL
]

USERS_SQL = """
INSERT INTO users (id, team_id, slack_user_id, username, full_name, is_admin, is_active,
                   profile_refreshed_at, created_at, updated_at)
SELECT g, CASE WHEN g <= 200 THEN :team ELSE :other END, 'U' || lpad(g::text, 8, '0'),
       'user' || g, 'User ' || g, g = 1, true, now(), now(), now()
FROM generate_series(1, 220) AS g
"""

# Nine rows in ten belong to the workspace under test, and users are skewed, as in life. User
# u talks in 1 + u % 3 channels of the 50, always the same ones. Nine answers in ten come from
# the channel's default model (popular models are the default of more channels); the rest
# from a model asked for that once, skewed too. One row in a hundred has no channel (its
# conversation was purged before the row was written).
RESPONSES_SQL = """
INSERT INTO responses (team_id, user_id, channel_id, model_used, provider, tokens_prompt,
                       tokens_completion, tokens_total, tokens_estimated, completion_time_ms,
                       time_to_first_token_ms, cost_usd, is_streaming, query_size, response_size,
                       status, created_at)
SELECT team_id, user_id, channel_id, model, 'openai', prompt, completion, prompt + completion,
       false, ms, ms / 5,
       CASE WHEN model = 'llama-3.1-70b' THEN NULL
            ELSE round((prompt * 2.5 + completion * 10.0) / 1000000, 8) END,
       true, prompt * 4, completion * 4, CASE WHEN fail THEN 'error' ELSE 'ok' END, at
FROM (
    SELECT team_id, user_id,
           CASE WHEN no_channel THEN NULL ELSE 'C' || lpad(channel::text, 8, '0') END
               AS channel_id,
           (:models)[CASE WHEN no_channel OR override
                          THEN 1 + floor(power(model_draw, 2) * 10)::int
                          ELSE 1 + floor(power((channel * 7919 % 1000) / 1000.0, 2) * 10)::int
                     END] AS model,
           prompt, completion, ms, fail, at
    FROM (
        SELECT team_id, user_id, (user_id * 37 + (pick % (1 + user_id % 3)) * 11) % 50 AS channel,
               no_channel, override, model_draw, prompt, completion, ms, fail, at
        FROM (
            SELECT CASE WHEN g % 10 = 0 THEN :other ELSE :team END AS team_id,
                   CASE WHEN g % 10 = 0 THEN 201 + floor(random() * 20)::int
                        ELSE 1 + floor(power(random(), 1.5) * 200)::int END AS user_id,
                   floor(random() * 3)::int AS pick,
                   random() < 0.01 AS no_channel,
                   random() < 0.1 AS override,
                   random() AS model_draw,
                   floor(random() * 4000)::int AS prompt,
                   floor(random() * 1000)::int AS completion,
                   200 + floor(random() * random() * 20000)::int AS ms,
                   random() < 0.02 AS fail,
                   now() - (:from_days + random() * :span_days) * interval '1 day' AS at
            FROM generate_series(:first, :last) AS g
        ) AS drawn
    ) AS placed
) AS generated
"""

CASES: list[tuple[str, str]] = [
    ("default (/usage: 30 days, whole workspace)", ""),
    ("filtered by model (/usage 30d model gpt-4o)", "30d model gpt-4o"),
    ("filtered by user (/usage 90d <@U00000002>)", "90d <@U00000002>"),
    ("filtered by channel (/usage 7d <#C00000037>)", "7d <#C00000037>"),
    ("last 24 hours (/usage 24h: partial days)", "24h"),
]


class _Admins:
    """Every member is an admin: the bench times the report, not the permission check."""

    def fetch(self, team_id: str, slack_user_id: str) -> Profile:
        return Profile(username=slack_user_id, full_name=slack_user_id, is_admin=True)


def main() -> int:
    """Create, fill, rebuild and time at each size; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_URL
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[1_000_000, 10_000_000],
        help="responses rows to time the reports at, ascending, comma-separated",
    )
    parser.add_argument("--rows", type=int, help="one size only (same as --sizes N)")
    parser.add_argument("--runs", type=int, default=15, help="timed runs per report")
    parser.add_argument("--scratch", default=SCRATCH, help="the scratch database's name")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--denser", action="store_true", help="every size over the same 90 days (more a day)"
    )
    parser.add_argument(
        "--time-only",
        action="store_true",
        help="only time the reports on the database an earlier --keep run left",
    )
    args = parser.parse_args()
    sizes = [args.rows] if args.rows else args.sizes

    admin_url = normalize_url(args.database_url)
    if make_url(admin_url).get_backend_name() != "postgresql":
        print("usage_report: the benchmark needs a PostgreSQL URL", file=sys.stderr)
        return 2
    scratch_url = (
        make_url(admin_url).set(database=args.scratch).render_as_string(hide_password=False)
    )
    if args.time_only:
        # A database kept by older code gets this code's schema (and its totals) first.
        loader = create_engine(normalize_url(scratch_url))
        if migrations.current_revision(loader) != migrations.head_revision(scratch_url):
            started = time.perf_counter()
            migrations.upgrade(scratch_url)
            print(f"migrated the kept database in {time.perf_counter() - started:.1f} s")
            with loader.connect() as connection:  # what autovacuum does soon after
                connection.execution_options(isolation_level="AUTOCOMMIT")
                connection.execute(text("VACUUM (ANALYZE) usage_daily_scopes"))
        with loader.connect() as connection:
            size = connection.scalar(text("SELECT count(*) FROM responses"))
        loader.dispose()
        _time_reports(scratch_url, size, args.runs)
        return 0
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        _recreate(admin, args.scratch)
        migrations.upgrade(scratch_url)
        loader = create_engine(normalize_url(scratch_url), isolation_level="AUTOCOMMIT")
        with loader.connect() as connection:
            connection.execute(text("SELECT setseed(0.42)"))
            connection.execute(text(USERS_SQL), {"team": TEAM, "other": OTHER_TEAM})
            filled = 0
            for size in sizes:
                _fill(connection, first=filled + 1, last=size, denser=args.denser)
                filled = size
                _rebuild(scratch_url, size)
                _time_reports(scratch_url, size, args.runs)
        loader.dispose()
    finally:
        if not args.keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{args.scratch}" WITH (FORCE)'))
        admin.dispose()
    return 0


def _sizes(value: str) -> list[int]:
    sizes = [int(part.replace("_", "")) for part in value.split(",") if part]
    if not sizes or sizes != sorted(sizes):
        raise argparse.ArgumentTypeError("give ascending sizes, e.g. 1000000,10000000")
    return sizes


def _recreate(admin: Engine, name: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))


def _fill(connection: Connection, *, first: int, last: int, denser: bool) -> None:
    started = time.perf_counter()
    # A longer history at the same daily traffic: rows go into the days before those filled.
    from_days = 0.0 if denser else (first - 1) * DAYS_PER_ROW
    span_days = DAYS if denser else (last - first + 1) * DAYS_PER_ROW
    connection.execute(
        text(RESPONSES_SQL),
        {
            "team": TEAM,
            "other": OTHER_TEAM,
            "models": MODELS,
            "first": first,
            "last": last,
            "from_days": from_days,
            "span_days": span_days,
        },
    )
    # What autovacuum does soon after a load: statistics, and the visibility map that lets
    # index-only scans skip the table.
    connection.execute(text("VACUUM (ANALYZE) responses"))
    connection.execute(text("VACUUM (ANALYZE) users"))
    _checkpoint(connection)
    size = connection.scalar(text("SELECT pg_size_pretty(pg_total_relation_size('responses'))"))
    elapsed = time.perf_counter() - started
    print(
        f"filled responses {first:,}..{last:,} ({last - first + 1:,} rows; {size} with "
        f"indexes) in {elapsed:.1f} s"
    )


def _rebuild(url: str, size: int) -> None:
    """The totals from every row, as `python -m bot usage --rebuild-totals` builds them."""
    engine = create_engine(normalize_url(url))
    started = time.perf_counter()
    with engine.begin() as connection:
        daily, monthly = totals.rebuild(connection)
    elapsed = time.perf_counter() - started
    engine.dispose()
    engine = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("VACUUM (ANALYZE) usage_daily"))
        connection.execute(text("VACUUM (ANALYZE) usage_monthly"))
        connection.execute(text("VACUUM (ANALYZE) usage_daily_scopes"))
        _checkpoint(connection)
        size_text = connection.scalar(
            text("SELECT pg_size_pretty(pg_total_relation_size('usage_daily'))")
        )
        scoped = connection.scalar(text("SELECT count(*) FROM usage_daily_scopes"))
    engine.dispose()
    print(
        f"rebuilt totals of {size:,} responses in {elapsed:.1f} s: {daily:,} daily rows "
        f"({size_text} with indexes), {scoped:,} daily rows per scope, {monthly:,} monthly rows"
    )


def _checkpoint(connection: Connection) -> None:
    # Write the loaded pages out now rather than during the timed runs (superusers only).
    with contextlib.suppress(ProgrammingError):
        connection.execute(text("CHECKPOINT"))


def _time_reports(url: str, size: int, runs: int) -> None:
    engine = make_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    service = UsageService(sessions, UserDirectory(sessions, _Admins()))
    print(
        f"{'report at ' + format(size, ',') + ' responses':<48} {'median':>9} {'p95':>9}   "
        f"({runs} runs, after 2 warm-up runs)"
    )
    calls: list[tuple[str, Callable[[], object]]] = [
        (name, functools.partial(service.report_for, TEAM, ADMIN, text=words))
        for name, words in CASES
    ]
    calls.append(
        (
            "operators (python -m bot usage: every workspace)",
            lambda: service.report(last_days(30, now=datetime.now(UTC))),
        )
    )
    for name, call in calls:
        timings = _timings(call, runs)
        median = statistics.median(timings)
        p95 = statistics.quantiles(timings, n=20, method="inclusive")[-1]
        print(f"{name:<48} {median:>6.0f} ms {p95:>6.0f} ms")
    engine.dispose()


def _timings(call: Callable[[], object], runs: int) -> list[float]:
    for _ in range(2):
        call()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


if __name__ == "__main__":
    raise SystemExit(main())
