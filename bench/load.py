"""Load and faults: 1,000 mentions at 100 a second into real bot processes on PostgreSQL.

The bots run as their own processes (`python -m bot serve`); this script holds the loopback
fakes of the Slack Web API and of a model that streams each answer over about a second, and
sends signed events on a fixed schedule, redelivering (as Slack does, up to three times) any
event not acknowledged with a 200. Runs: one process; two processes with every event
delivered to both; two processes with one killed (SIGKILL) halfway through; `serve
--accept-only` beside `work`. Each prints events lost and replies duplicated (both must be
0), acknowledgement p50/p99, reply complete p50/p99 (event sent → the reply's stream
stopped) and the same less the model's own time, peak RSS and CPU seconds per turn.

`--only cpu` sends mentions one at a time (each once the previous turn is done) and prints the
CPU a turn costs the bot process (user + system, from /proc), median of three runs of
`--events` turns after a warm-up; the model streams each answer at once, in 40 chunks. A
process has one interpreter: at about 1 / (CPU per turn) turns a second it is full.

`--only burst` instead sends 300 mentions at once (`--burst N`) to one `serve` as it starts
by default, the model streaming each answer over 30 s (`--stream-seconds`), and prints first
visible text (event sent → `chat.startStream`) p50/p99, peak RSS and threads of the process,
and the most database connections it held.

    .venv/bin/python bench/load.py [--events 1000] [--rate 100] [--database-url URL]
    .venv/bin/python bench/load.py --only burst [--burst 300] [--stream-seconds 30]
    .venv/bin/python bench/load.py --only cpu [--events 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.shell import migrations
from db.engine import normalize_url
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.faults import BotProcess
from tests.harness import BOT_USER

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/switchboard_bench_load"
ANSWER = " ".join(["word"] * 40)
# One process; two, every event to both; two with one killed halfway; one that only accepts
# (`serve --accept-only`) beside one that only answers (`work`); a burst of long answers.
SCENARIOS = ("one", "two", "kill", "split", "burst", "cpu")
# The model's own time for each answer in the paced scenarios.
MODEL_SECONDS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="events a second")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--only", choices=SCENARIOS, help="run one scenario")
    parser.add_argument("--burst", type=int, default=300, help="mentions sent at once")
    parser.add_argument("--stream-seconds", type=float, default=30.0)
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a bot setting"
    )
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    if args.only == "burst":
        burst(args.burst, args.stream_seconds, args.database_url, extra)
        return
    if args.only == "cpu":
        runs = [turn_cpu(args.events, args.database_url, extra) for _ in range(3)]
        print(f"== cpu: {args.events} turns one at a time, three runs")
        for cpu, wall in runs:
            print(f"  {cpu:.2f} ms CPU a turn ({wall:.1f} ms wall)")
        print(f"  median {statistics.median(cpu for cpu, _ in runs):.2f} ms CPU a turn")
        return
    for scenario in SCENARIOS[:-2]:
        if args.only in (None, scenario):
            run(scenario, args.events, args.rate, args.database_url, extra)


def burst(events: int, stream_seconds: float, url: str, extra: dict[str, str]) -> None:
    """`events` mentions at once into one `serve` with default settings; first text timings."""
    fresh_database(url)
    with tempfile.TemporaryDirectory() as scratch, FakeSlackAPI() as slack, FakeOpenAI() as model:
        pieces = [word + " " for word in ANSWER.split(" ")]
        model.default_reply = FakeReply(chunks=pieces, chunk_delay=stream_seconds / len(pieces))
        settings = {"LOG_LEVEL": "WARNING"} | extra
        log_path = Path(scratch) / "bot.log"
        bot = BotProcess(slack, model, url, log_path=log_path, command=("serve",), **settings)
        sampler = Sampler(bot, url)
        try:
            sender = Sender([bot], rate=1e6).send(events, kill_at=None)
            first: dict[str, float] = {}
            deadline = time.monotonic() + stream_seconds + 120
            while len(first) < events and time.monotonic() < deadline:
                for call in slack.calls_to("chat.startStream"):
                    first.setdefault(str(call.args.get("thread_ts")), call.at)
                time.sleep(0.5)
            wait_answered(url, events, timeout=stream_seconds + 120)
            sampler.stop()
            waits = sorted(first[ts] - sent for ts, sent in sender.sent_at.items() if ts in first)
            acks = sorted(sender.acks)
            statuses = [
                c for c in slack.calls_to("assistant.threads.setStatus")
                if "free slot" in str(c.args.get("status"))
            ]  # fmt: skip
            print(f"== burst: {events} mentions at once, answers streaming {stream_seconds:g} s")
            print(f"  first visible text: p50 {pct(waits, 50):.0f} ms, "
                  f"p99 {pct(waits, 99):.0f} ms, max {pct(waits, 100):.0f} ms "
                  f"({len(waits)} of {events} threads)")  # fmt: skip
            print(f"  acknowledgement: p50 {pct(acks, 50):.0f} ms, p99 {pct(acks, 99):.0f} ms "
                  f"({sender.refused} not acknowledged in time)")  # fmt: skip
            print(f"  'waiting for a free slot' statuses: {len(statuses)}")
            print(f"  peak RSS {sampler.rss:.0f} MB (idle after start {sampler.idle_rss:.0f} MB); "
                  f"threads at most {sampler.threads}; database connections at most "
                  f"{sampler.connections}")  # fmt: skip
        finally:
            sampler.stop()
            bot.kill()


def turn_cpu(turns: int, url: str, extra: dict[str, str]) -> tuple[float, float]:
    """CPU and wall milliseconds a turn of one `serve`, mentions sent one at a time."""
    fresh_database(url)
    engine = create_engine(normalize_url(url))

    def done() -> int:
        with engine.connect() as connection:
            return connection.scalar(text("SELECT count(*) FROM turns WHERE state = 'done'")) or 0

    with tempfile.TemporaryDirectory() as scratch, FakeSlackAPI() as slack, FakeOpenAI() as model:
        model.default_reply = FakeReply(chunks=[word + " " for word in ANSWER.split(" ")])
        settings = {"LOG_LEVEL": "WARNING"} | extra
        log_path = Path(scratch) / "bot.log"
        with BotProcess(
            slack, model, url, log_path=log_path, command=("serve",), **settings
        ) as bot:

            def ask(n: int) -> None:
                target = done() + 1
                event = bot.message_event(
                    f"<@{BOT_USER}> question {n}", channel=f"C{n % 50:04d}"
                ) | {"type": "app_mention"}
                assert bot.event(event).status == 200
                while done() < target:
                    time.sleep(0.002)

            for n in range(20):  # warm-up: imports, caches, the pool
                ask(n)
            cpu_before, began = resources(bot)[1], time.monotonic()
            for n in range(20, 20 + turns):
                ask(n)
            cpu, wall = resources(bot)[1] - cpu_before, time.monotonic() - began
    engine.dispose()
    return cpu / turns * 1000, wall / turns * 1000


class Sampler:
    """Samples a bot's threads and its database connections twice a second."""

    def __init__(self, bot: BotProcess, url: str) -> None:
        self.bot = bot
        self.idle_rss = resources(bot)[0]
        self.rss = 0.0
        self.threads = 0
        self.connections = 0
        self._database = make_url(normalize_url(url)).database
        self._engine = create_engine(normalize_url(url))
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stopped.wait(0.5):
            try:
                status = Path(f"/proc/{self.bot.process.pid}/status").read_text()
            except OSError:
                return
            for line in status.splitlines():
                if line.startswith("Threads:"):
                    self.threads = max(self.threads, int(line.split()[1]))
            self.rss = max(self.rss, resources(self.bot)[0])
            with self._engine.connect() as connection:
                held = connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": self._database},
                )
            self.connections = max(self.connections, int(held or 0))

    def stop(self) -> None:
        """Stop sampling."""
        if not self._stopped.is_set():
            self._stopped.set()
            self._thread.join(timeout=5)
            self._engine.dispose()


def run(scenario: str, events: int, rate: float, url: str, extra: dict[str, str]) -> None:
    """One scenario on a fresh database."""
    fresh_database(url)
    with tempfile.TemporaryDirectory() as scratch, FakeSlackAPI() as slack, FakeOpenAI() as model:
        pieces = [word + " " for word in ANSWER.split(" ")]
        model.default_reply = FakeReply(chunks=pieces, chunk_delay=MODEL_SECONDS / len(pieces))
        settings = {"LOG_LEVEL": "WARNING", "TURN_LEASE_SECONDS": "5", "TURN_POLL_SECONDS": "0.5"}
        settings |= extra
        scenarios: dict[str, list[tuple[str, ...]]] = {
            "one": [("serve",)],
            "two": [("serve",), ("serve",)],
            "kill": [("serve",), ("serve",)],
            "split": [("serve", "--accept-only"), ("work",)],
        }
        commands = scenarios[scenario]
        bots = [
            BotProcess(
                slack, model, url, log_path=Path(scratch) / f"bot{n}.log", command=cmd, **settings
            )
            for n, cmd in enumerate(commands)
        ]
        try:
            started = [resources(bot) for bot in bots]  # start-up is not a turn's
            report = Sender(bots, rate).send(
                events, kill_at=events // 2 if scenario == "kill" else None
            )
            wait_answered(url, events, timeout=180)
            # CPU once every turn is done (a turn's work goes on long after its ack); the
            # killed process's as it was killed.
            usage = [resources(bot) for bot in bots]
            if report.usage_at_kill is not None:
                usage[0] = report.usage_at_kill
            usage = [
                (rss, cpu - before) for (rss, cpu), (_, before) in zip(usage, started, strict=True)
            ]
            summarize(scenario, report, slack, url, events, usage)
        finally:
            for bot in bots:
                bot.kill()


class Sender:
    """Sends events on a schedule to every live bot, redelivering what is not acknowledged."""

    def __init__(self, bots: list[BotProcess], rate: float) -> None:
        self.bots = bots
        self.rate = rate
        self.acks: list[float] = []
        self.sent_at: dict[str, float] = {}
        self.refused = 0
        self.dead: set[int] = set()
        self.usage_at_kill: tuple[float, float] | None = None
        self._lock = threading.Lock()

    def send(self, events: int, *, kill_at: int | None) -> Sender:
        pool = ThreadPoolExecutor(max_workers=128)
        started = time.monotonic()
        for n in range(events):
            delay = started + n / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if n == kill_at:
                self.usage_at_kill = resources(self.bots[0])
                self.bots[0].kill()
                self.dead.add(0)
            event = self.bots[0].message_event(
                f"<@{BOT_USER}> question {n}", channel=f"C{n % 50:04d}"
            ) | {"type": "app_mention"}
            self.sent_at[event["ts"]] = time.monotonic()
            pool.submit(self._deliver, event)
        pool.shutdown(wait=True)
        return self

    def _deliver(self, event: dict[str, Any]) -> None:
        for attempt in range(4):  # the delivery, then Slack's three retries
            acked = False
            for index, bot in enumerate(self.bots):
                if index in self.dead or not bot.accepts:
                    continue
                began = time.monotonic()
                try:
                    status = bot.event(event, retry_num=attempt or None).status
                except OSError:
                    continue
                took = time.monotonic() - began
                with self._lock:
                    self.acks.append(took)
                    if status != 200 or took > 3.0:
                        self.refused += 1
                acked = acked or (status == 200 and took <= 3.0)
            if acked:
                return
            time.sleep(1.0)


def resources(bot: BotProcess) -> tuple[float, float]:
    """Peak RSS (MB) and CPU seconds of a bot process so far (0, 0 once it is gone)."""
    pid = bot.process.pid
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    ticks = os.sysconf("SC_CLK_TCK")
    return peak / 1024, (int(stat[11]) + int(stat[12])) / ticks


def wait_answered(url: str, events: int, *, timeout: float) -> None:
    """Until every event's turn is done (or `timeout`)."""
    engine = create_engine(normalize_url(url))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                done = connection.scalar(text("SELECT count(*) FROM turns WHERE state = 'done'"))
            if (done or 0) >= events:
                return
            time.sleep(0.5)
    finally:
        engine.dispose()


def summarize(
    scenario: str,
    sender: Sender,
    slack: FakeSlackAPI,
    url: str,
    events: int,
    usage: list[tuple[float, float]],
) -> None:
    engine = create_engine(normalize_url(url))
    with engine.connect() as connection:
        per_thread = connection.execute(
            text(
                "SELECT c.thread_ts, count(r.id) FROM conversations c "
                "LEFT JOIN responses r ON r.conversation_id = c.id GROUP BY c.thread_ts"
            )
        ).all()
        turns = connection.scalar(text("SELECT count(*) FROM turns WHERE state = 'done'"))
    engine.dispose()
    answered = {ts: n for ts, n in per_thread}
    lost = sum(1 for ts in sender.sent_at if answered.get(ts, 0) == 0)
    duplicated = sum(1 for n in answered.values() if n > 1)
    stopped: dict[str, float] = {}
    streams: dict[str, str] = {}
    for call in slack.calls:
        if call.method == "chat.startStream":
            streams[str(call.response.get("ts"))] = str(call.args.get("thread_ts"))
        elif call.method == "chat.stopStream" and call.args.get("ts") in streams:
            stopped[streams[call.args["ts"]]] = call.at
    completes = [stopped[ts] - sent for ts, sent in sender.sent_at.items() if ts in stopped]
    threads_with_two_answers: defaultdict[str, int] = defaultdict(int)
    for thread_ts in streams.values():
        threads_with_two_answers[thread_ts] += 1
    acks = sorted(sender.acks)
    rss = max(peak for peak, _ in usage)
    cpu = sum(seconds for _, seconds in usage)
    print(f"== {scenario}: {len(usage)} process(es), {events} events at {sender.rate:g}/s")
    print(f"  events lost: {lost}; replies duplicated: {duplicated}; turns done: {turns}")
    print(f"  acknowledgement: p50 {pct(acks, 50):.0f} ms, p99 {pct(acks, 99):.0f} ms "
          f"({sender.refused} not acknowledged in time, redelivered)")  # fmt: skip
    print(f"  reply complete: p50 {pct(sorted(completes), 50):.0f} ms, "
          f"p99 {pct(sorted(completes), 99):.0f} ms; less the model's {MODEL_SECONDS:g} s: "
          f"p50 {pct(sorted(completes), 50) - MODEL_SECONDS * 1000:.0f} ms")  # fmt: skip
    streams_per_thread = statistics.mean(threads_with_two_answers.values() or [0])
    print(f"  Slack streams per thread: {streams_per_thread:.3f} (a killed turn's is restarted)")
    print(f"  peak RSS {rss:.0f} MB; CPU {cpu / max(1, events) * 1000:.1f} ms per turn "
          f"(sum over processes; the killed one's until its kill)")  # fmt: skip


def pct(values: list[float], q: int) -> float:
    """The q-th percentile of sorted `values`, in milliseconds."""
    if not values:
        return float("nan")
    q = min(q, 100)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))] * 1000


def fresh_database(url: str) -> None:
    """Drop and create the scratch database, and migrate it."""
    target = make_url(normalize_url(url))
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    migrations.upgrade(url)


if __name__ == "__main__":
    main()
