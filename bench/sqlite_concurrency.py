"""Benchmark SQLite transactions from many threads, as the bot runs them on one process.

On a migrated SQLite file holding `--rows` responses, it starts `--writers` turn-like write
transactions at once (a conversation, a message and a response through `db.queries`, each in
`sessions.begin()`, one thread each) and prints: wall time of the burst and p50/p99 per
transaction; then the same burst with, at the same moment, a trivial read (`get_thread` in a
plain `Session()`, 2 ms into the burst) and a `/usage`-like report, both as the app
runs it (`UsageService.report`, which reads in `sessions.begin()`) and as a plain `Session()`
read (`usage_queries.breakdown`). Figures are medians over `--rounds` rounds.

    .venv/bin/python bench/sqlite_concurrency.py [--writers 40] [--rounds 7] [--rows 30000]
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from bot.shell import migrations
from bot.usage.reports import UsageService
from bot.usage.request import Period
from db import queries, totals, usage_queries
from db.engine import make_engine, make_sessionmaker
from db.models import Response

TEAM = "T1"
_ids = itertools.count(1)


def seed(sessions: sessionmaker[Session], rows: int) -> None:
    """`rows` responses over the last 30 days, so a report has something to read."""
    now = datetime.now(UTC)
    rng = random.Random(7)
    values = [
        {
            "team_id": TEAM,
            "channel_id": f"C{rng.randrange(20)}",
            "model_used": f"model-{rng.randrange(5)}",
            "tokens_prompt": 100,
            "tokens_completion": 50,
            "tokens_total": 150,
            "completion_time_ms": rng.randrange(100, 5000),
            "created_at": now - timedelta(seconds=rng.randrange(30 * 86400)),
        }
        for _ in range(rows)
    ]
    with sessions.begin() as session:
        session.execute(insert(Response), values)
        totals.rebuild(session)  # what the reports read; one by one would take a while


def turn(sessions: sessionmaker[Session]) -> float:
    """One turn-like write transaction; its latency in seconds."""
    n = next(_ids)
    started = time.perf_counter()
    with sessions.begin() as session:
        thread = queries.start_conversation(
            session,
            team_id=TEAM,
            channel_id="C1",
            thread_ts=f"{n}.000100",
            default_model="gpt-4o-mini",
            user_id=None,
            title="hello",
        )
        assert thread is not None
        message_id = queries.add_message_once(
            session,
            conversation_id=thread.id,
            user_id=None,
            role="user",
            content="hello " * 20,
            slack_ts=f"{n}.000100",
        )
        queries.add_response(
            session,
            queries.ResponseRecord(
                message_id=message_id,
                team_id=TEAM,
                conversation_id=thread.id,
                channel_id="C1",
                model_used="gpt-4o-mini",
                tokens_prompt=10,
                tokens_completion=20,
                tokens_total=30,
                completion_time_ms=900,
            ),
        )
    return time.perf_counter() - started


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def burst(
    sessions: sessionmaker[Session], writers: int, extra: dict[str, Callable[[], object]]
) -> tuple[float, list[float], dict[str, list[float]]]:
    """Writers and `extra` readers (each run once, 2 ms in) started at one moment."""
    latencies: list[float] = []
    extra_times: dict[str, list[float]] = {name: [] for name in extra}
    lock = threading.Lock()
    gate = threading.Barrier(writers + len(extra) + 1)

    def write() -> None:
        gate.wait()
        took = turn(sessions)
        with lock:
            latencies.append(took)

    def read(name: str, call: Callable[[], object]) -> None:
        gate.wait()
        time.sleep(0.002)  # once the writers are under way
        extra_times[name].append(timed(call))

    threads = [threading.Thread(target=write) for _ in range(writers)]
    readers = [threading.Thread(target=read, args=item) for item in extra.items()]
    for thread in threads + readers:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    for thread in readers:
        thread.join()
    return wall, latencies, extra_times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", type=int, default=30_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{scratch}/bench.db"
        migrations.upgrade(url)
        engine = make_engine(url, pool_size=32)  # as bot/shell/wiring.py builds it
        sessions = make_sessionmaker(engine)
        seed(sessions, args.rows)
        now = datetime.now(UTC)
        period = Period(now - timedelta(days=30), now, "last 30 days")
        usage = UsageService(sessions, users=None)  # type: ignore[arg-type]  # report() needs none
        report_filter = usage_queries.UsageFilter(start=period.start, end=period.end, team_id=TEAM)

        def trivial_read() -> None:
            with sessions() as session:
                queries.get_thread(session, TEAM, "C1", "1.000100")

        def report_as_app() -> None:
            usage.report(period, team_id=TEAM)

        def report_plain() -> None:
            with sessions() as session:
                usage_queries.breakdown(session, report_filter)

        for call in (trivial_read, report_as_app, report_plain):  # warm up
            call()
        alone = {
            "report, app (quiet db)": [timed(report_as_app) for _ in range(5)],
            "report, plain Session (quiet db)": [timed(report_plain) for _ in range(5)],
        }
        figures: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            wall, latencies, _ = burst(sessions, args.writers, {})
            figures.setdefault("writes alone: wall", []).append(wall)
            figures.setdefault("writes alone: p50", []).append(percentile(latencies, 0.5))
            figures.setdefault("writes alone: p99", []).append(percentile(latencies, 0.99))
        for name, reader in (
            ("trivial read", trivial_read),
            ("report, app", report_as_app),
            ("report, plain Session", report_plain),
        ):
            for _ in range(args.rounds):
                wall, latencies, extra = burst(sessions, args.writers, {name: reader})
                figures.setdefault(f"with {name}: writes wall", []).append(wall)
                figures.setdefault(f"with {name}: writes p99", []).append(
                    percentile(latencies, 0.99)
                )
                figures.setdefault(f"{name} during burst", []).append(extra[name][0])
        engine.dispose()

    print(
        f"{args.writers} concurrent write transactions, {args.rows:,} responses rows, "
        f"medians of {args.rounds} rounds (quiet-db reports: of 5 runs)"
    )
    for name, values in {**alone, **figures}.items():
        print(f"  {name:<48} {ms(statistics.median(values))}")


if __name__ == "__main__":
    main()
