"""Ledger write benchmark: what recording one response (its row and the running totals) costs.

    python bench/ledger.py [--database-url URL] [--records 2000] [--threads 1,8,32]
                           [--scratch NAME] [--code PATH]

Each record is one transaction as the ledger writes it around a reply: the `responses` row
and the running totals (`db.queries.add_response`), then the commit. All of them land on the
same UTC day in one workspace, nine in ten with the same model, as a busy workspace's turns
do, so every writer updates the same totals rows: the workspace's month, and the day's rows
that every turn shares. With --threads N, N threads (each with its own connection) record at
once; the script prints records a second and the median and p99 time of one record.

It runs on a scratch PostgreSQL database (default switchboard_bench_ledger, dropped at the
end) on the server named by the URL (default: BENCH_DATABASE_URL, else
postgresql://postgres@127.0.0.1:5432/test), then on a SQLite file (one thread: SQLite has one
writer at a time). `--code PATH` runs another checkout's `db` package and migrations, e.g. an
export of the code before a change (`git archive COMMIT | tar -x -C /tmp/before`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
parser.add_argument("--records", type=int, default=2000, help="records per run")
parser.add_argument("--threads", default="1,8,32", help="writers at once, comma-separated")
parser.add_argument("--scratch", default="switchboard_bench_ledger")
parser.add_argument("--code", default=str(Path(__file__).resolve().parents[1]))
args = parser.parse_args()
sys.path.insert(0, str(Path(args.code).resolve()))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bot.shell import migrations  # noqa: E402
from db import queries  # noqa: E402
from db.engine import make_engine, make_sessionmaker, normalize_url  # noqa: E402
from db.models import User  # noqa: E402

TEAM = "T0LEDGER1"
USERS = 200
MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "o4-mini", "claude-sonnet-4"]


def main() -> int:
    """Time the recordings on PostgreSQL, then on SQLite; return the exit code."""
    print(f"code: {Path(queries.__file__).resolve().parents[1]}")
    threads = [int(part) for part in args.threads.split(",") if part]
    admin_url = normalize_url(args.database_url or "postgresql://postgres@127.0.0.1:5432/test")
    scratch = make_url(admin_url).set(database=args.scratch).render_as_string(hide_password=False)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{args.scratch}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{args.scratch}"'))
        migrations.upgrade(scratch)
        for count in threads:
            _run("postgresql", scratch, count)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{args.scratch}" WITH (FORCE)'))
        admin.dispose()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/ledger.db"
        migrations.upgrade(url)
        _run("sqlite", url, 1)
    return 0


def _run(backend: str, url: str, writers: int) -> None:
    engine = make_engine(url, pool_size=max(writers, 2))
    sessions = make_sessionmaker(engine)
    users = _users(sessions)
    timings: list[float] = []
    lock = threading.Lock()
    each = args.records // writers

    def write(worker: int) -> None:
        mine = []
        for number in range(each):
            n = worker * each + number
            user_id, slack_user_id = users[(n * 7919) % len(users)]
            record = queries.ResponseRecord(
                team_id=TEAM,
                user_id=user_id,
                channel_id=f"C{(user_id * 37 + n % 3) % 50:08d}",
                model_used=MODELS[0] if n % 10 else MODELS[n // 10 % len(MODELS)],
                tokens_prompt=1200,
                tokens_completion=300,
                tokens_total=1500,
                completion_time_ms=200 + (n * 389) % 8000,
                cost_usd=None if n % 50 == 0 else Decimal("0.00525"),
            )
            started = time.perf_counter()
            with sessions.begin() as session:
                queries.add_response(session, record, slack_user_id=slack_user_id)
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            timings.extend(mine)

    workers = [threading.Thread(target=write, args=(index,)) for index in range(writers)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    p99 = statistics.quantiles(timings, n=100, method="inclusive")[-1]
    print(
        f"{backend:<10} {writers:>3} at once: {len(timings) / elapsed:>7.0f} records/s, "
        f"one record median {statistics.median(timings):6.2f} ms, p99 {p99:6.2f} ms"
    )
    with sessions.begin() as session:  # the next run starts from the same place
        for table in ("usage_daily_scopes", "usage_daily", "usage_monthly", "responses"):
            if not engine.dialect.has_table(session.connection(), table):
                continue  # the code before the totals per scope
            if backend == "postgresql":
                session.execute(text(f"TRUNCATE {table} CASCADE"))
            else:
                session.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


def _users(sessions: sessionmaker[Session]) -> list[tuple[int, str]]:
    with sessions.begin() as session:
        existing = session.query(User.id, User.slack_user_id).all()
        if not existing:
            session.add_all(
                User(team_id=TEAM, slack_user_id=f"U{number:08d}") for number in range(USERS)
            )
            session.flush()
            existing = session.query(User.id, User.slack_user_id).all()
    return [(user_id, slack_user_id) for user_id, slack_user_id in existing]


if __name__ == "__main__":
    raise SystemExit(main())
