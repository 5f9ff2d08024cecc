"""A database that hangs with its connections open: every wait on it is bounded.

The TCP proxy between the app and PostgreSQL is frozen: connections stay open, nothing goes
through, nothing errors (as a paused VM or a stopped server looks). The shared PostgreSQL
server itself is never stopped.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from db.engine import make_engine
from db.models import Message, Response, Turn
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.faults import TcpProxy
from tests.harness import HttpResult, SlackAppHarness


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    """An engine on the test's database, for reading what the app stored."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def proxy(db_backend: str, db_url: str) -> Iterator[TcpProxy]:
    """A proxy in front of the test's PostgreSQL database."""
    if db_backend != "postgresql":
        pytest.skip("a frozen database is a network fault: PostgreSQL")
    with TcpProxy("127.0.0.1", make_url(db_url).port or 5432) as proxy:
        yield proxy


def via(proxy: TcpProxy, db_url: str) -> str:
    """`db_url` routed through `proxy`."""
    url = make_url(db_url).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)


def count(engine: Engine, model: Any, *where: Any) -> int:
    """Rows of `model` matching `where`."""
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(model).where(*where)) or 0


def timed(call: Callable[[], HttpResult]) -> tuple[int, float]:
    """The status of `call()` and how long it took."""
    started = time.monotonic()
    status = call().status
    return status, time.monotonic() - started


def test_storing_an_event_gives_up_within_2_s_and_the_redelivery_is_answered_once(
    make_app: Callable[..., SlackAppHarness], proxy: TcpProxy, db_url: str, db: Engine
) -> None:
    app = make_app(database_url=via(proxy, db_url))
    app.mention("warm the pool")
    app.wait_idle()
    proxy.freeze()
    event = app.message_event("<@UBOT> are you there?") | {"type": "app_mention"}
    status, took = timed(lambda: app.event(event))
    assert status >= 500  # Slack delivers it again
    assert took < 2.8, f"the acknowledgement took {took:.1f} s, Slack gives up at 3 s"
    proxy.restore()
    proxy.cut()  # the frozen connections go; new ones get through
    proxy.restore()
    deadline = time.monotonic() + 10
    while app.event(event, retry_num=1).status != 200:
        assert time.monotonic() < deadline, "the redelivery was never stored"
        time.sleep(0.2)
    app.wait_idle(timeout=20)
    assert count(db, Message, Message.role == "user") == 2
    assert count(db, Turn, Turn.state == "done") == 2
    assert count(db, Response) == 2


def test_health_answers_within_1_s_while_every_http_thread_waits_on_the_database(
    make_app: Callable[..., SlackAppHarness], proxy: TcpProxy, db_url: str
) -> None:
    app = make_app(database_url=via(proxy, db_url))  # the harness serves on 8 threads
    assert app.get("/healthz").status == 200
    proxy.freeze()
    time.sleep(1.1)  # past the last good answer's freshness
    events = [app.message_event(f"<@UBOT> q{n}") | {"type": "app_mention"} for n in range(24)]
    with ThreadPoolExecutor(max_workers=64) as pool:
        stored = [pool.submit(timed, lambda e=e: app.event(e)) for e in events]  # type: ignore[misc]
        time.sleep(0.3)  # every HTTP thread now waits on the frozen database
        checks = [pool.submit(timed, lambda: app.get("/healthz")) for _ in range(30)]
        health = [check.result() for check in checks]
        acks = [result.result() for result in stored]
    assert {status for status, _ in health} == {503}
    assert max(took for _, took in health) < 1.0, sorted(took for _, took in health)
    assert all(status >= 500 for status, _ in acks)
    # 24 events on 8 threads, each given up after 2 s: three rounds, not the freeze's length.
    assert max(took for _, took in acks) < 7.5


def test_a_frozen_database_is_logged_once_when_it_starts_and_once_when_it_ends(
    make_app: Callable[..., SlackAppHarness],
    proxy: TcpProxy,
    db_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(database_url=via(proxy, db_url))
    app.mention("warm the pool")
    app.wait_idle()
    with caplog.at_level(logging.INFO, logger="db.engine"):
        proxy.freeze()
        for n in range(3):
            assert (
                app.event(app.message_event(f"<@UBOT> q{n}") | {"type": "app_mention"}).status
                >= 500
            )
        proxy.restore()
        proxy.cut()
        proxy.restore()
        back = app.message_event("<@UBOT> back?") | {"type": "app_mention"}
        deadline = time.monotonic() + 10
        while app.event(back).status != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        app.wait_idle(timeout=20)
    lines = [r.getMessage() for r in caplog.records if r.name == "db.engine"]
    assert len([line for line in lines if "not answering" in line]) == 1, lines
    assert len([line for line in lines if "answers again" in line]) == 1, lines


def test_a_reply_recorded_while_the_database_is_frozen_is_recorded_once_it_thaws(
    make_app: Callable[..., SlackAppHarness],
    proxy: TcpProxy,
    db_url: str,
    db: Engine,
    slack: FakeSlackAPI,
    model: FakeOpenAI,
) -> None:
    app = make_app(database_url=via(proxy, db_url), database_timeout=1.0)
    words = ["An", "answer", "that", "outlives", "the", "frozen", "database."]
    model.enqueue(FakeReply(chunks=[w + " " for w in words], chunk_delay=0.25))
    ts = app.mention("hello")
    slack.wait_until(
        lambda calls: next((c for c in calls if c.method == "chat.startStream"), None), timeout=10
    )
    time.sleep(0.3)  # the reply's ts is noted
    proxy.freeze()
    slack.wait_for("chat.stopStream", timeout=10)  # the answer ends while nothing gets through
    time.sleep(2.5)  # each try to record it gives up after 1 s, and is tried again
    assert count(db, Response) == 0
    proxy.restore()
    proxy.cut()
    proxy.restore()
    app.wait_idle(timeout=30)
    assert count(db, Response, Response.status == "ok") == 1
    assert count(db, Turn, Turn.state == "done") == 1
    assert ts


def test_on_sqlite_a_write_waits_for_the_lock_at_most_the_database_timeout(
    make_app: Callable[..., SlackAppHarness], db_backend: str, db_url: str, db: Engine
) -> None:
    if db_backend != "sqlite":
        pytest.skip("SQLite's write lock")
    app = make_app(database_timeout=1.0)
    holder = sqlite3.connect(make_url(db_url).database or "", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for a long time
    event = app.message_event("<@UBOT> hello") | {"type": "app_mention"}
    try:
        status, took = timed(lambda: app.event(event))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert status >= 500
    assert 0.9 < took < 2.5
    assert app.event(event, retry_num=1).status == 200
    app.wait_idle(timeout=20)
    assert count(db, Response) == 1
