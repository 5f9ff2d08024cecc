"""Usage report benchmark: time /usage reports over 1,000,000 responses on PostgreSQL.

    python bench/usage_report.py [--database-url URL] [--rows N] [--runs N] [--keep]

It creates its own scratch database (switchboard_bench_usage) on the server named by the URL
(default: BENCH_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/test), migrates it with
Alembic, fills it with generate_series (two workspaces, 200 + 20 users, 10 models, 50 channels,
90 days), then times the same service call /usage makes. The scratch database is dropped at
the end unless --keep is given; no other database is touched.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from bot.members.directory import Profile, UserDirectory
from bot.shell import migrations
from bot.usage.reports import UsageService
from db.engine import make_engine, make_sessionmaker, normalize_url

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCRATCH = "switchboard_bench_usage"
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

# Nine rows in ten belong to the workspace under test; models and users are skewed, as in life.
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
    SELECT CASE WHEN g % 10 = 0 THEN :other ELSE :team END AS team_id,
           CASE WHEN g % 10 = 0 THEN 201 + floor(random() * 20)::int
                ELSE 1 + floor(power(random(), 1.5) * 200)::int END AS user_id,
           'C' || lpad(floor(power(random(), 2) * 50)::text, 8, '0') AS channel_id,
           (:models)[1 + floor(power(random(), 2) * 10)::int] AS model,
           floor(random() * 4000)::int AS prompt,
           floor(random() * 1000)::int AS completion,
           200 + floor(random() * random() * 20000)::int AS ms,
           random() < 0.02 AS fail,
           now() - random() * interval '90 days' AS at
    FROM generate_series(1, :rows) AS g
) AS generated
"""

CASES: list[tuple[str, str]] = [
    ("default (/usage: 30 days, whole workspace)", ""),
    ("filtered by model (/usage 30d model gpt-4o)", "30d model gpt-4o"),
    ("filtered by user (/usage 90d <@U00000002>)", "90d <@U00000002>"),
    ("filtered by channel (/usage 7d <#C00000003>)", "7d <#C00000003>"),
]


class _Admins:
    """Every member is an admin: the bench times the report, not the permission check."""

    def fetch(self, team_id: str, slack_user_id: str) -> Profile:
        return Profile(username=slack_user_id, full_name=slack_user_id, is_admin=True)


def main() -> int:
    """Create, fill and time; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_URL
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15, help="timed runs per report")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    admin_url = normalize_url(args.database_url)
    if make_url(admin_url).get_backend_name() != "postgresql":
        print("usage_report: the benchmark needs a PostgreSQL URL", file=sys.stderr)
        return 2
    scratch_url = make_url(admin_url).set(database=SCRATCH).render_as_string(hide_password=False)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        _recreate(admin)
        _fill(scratch_url, args.rows)
        _time_reports(scratch_url, args.runs)
    finally:
        if not args.keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
        admin.dispose()
    return 0


def _recreate(admin: Engine) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{SCRATCH}"'))


def _fill(url: str, rows: int) -> None:
    started = time.perf_counter()
    migrations.upgrade(url)
    engine = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("SELECT setseed(0.42)"))
        connection.execute(text(USERS_SQL), {"team": TEAM, "other": OTHER_TEAM})
        connection.execute(
            text(RESPONSES_SQL),
            {"team": TEAM, "other": OTHER_TEAM, "models": MODELS, "rows": rows},
        )
        # What autovacuum does soon after a load: statistics, and the visibility map that lets
        # index-only scans skip the table.
        connection.execute(text("VACUUM (ANALYZE) responses"))
        connection.execute(text("VACUUM (ANALYZE) users"))
        # Write the loaded pages out now rather than during the timed runs (superusers only).
        with contextlib.suppress(ProgrammingError):
            connection.execute(text("CHECKPOINT"))
        size = connection.scalar(text("SELECT pg_size_pretty(pg_total_relation_size('responses'))"))
    engine.dispose()
    elapsed = time.perf_counter() - started
    print(f"filled {rows:,} responses ({size} with indexes) in {elapsed:.1f} s")


def _time_reports(url: str, runs: int) -> None:
    engine = make_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    service = UsageService(sessions, UserDirectory(sessions, _Admins()))
    print(f"{'report':<48} {'median':>9} {'p95':>9}   ({runs} runs, after 2 warm-up runs)")
    for name, words in CASES:

        def report(words: str = words) -> object:
            return service.report_for(TEAM, ADMIN, text=words)

        timings = _timings(report, runs)
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
