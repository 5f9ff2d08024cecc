"""SQLite transactions from several threads: readers never wait, writers wait their turn."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_sessionmaker
from db.models import WorkspaceSettings


@pytest.fixture
def sqlite_sessions(_sqlite_template: Path, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a migrated SQLite file (these are SQLite's locking rules)."""
    path = tmp_path / "engine.db"
    shutil.copyfile(_sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield make_sessionmaker(engine)
    engine.dispose()


def hold_a_write(
    sessions: sessionmaker[Session], team_id: str, holding: threading.Event, go: threading.Event
) -> threading.Thread:
    """A thread that writes a row, then keeps its transaction open until `go` (at most 5 s)."""

    def write() -> None:
        with sessions.begin() as session:
            session.add(WorkspaceSettings(team_id=team_id, channel_defaults_admins_only=True))
            session.flush()
            holding.set()
            go.wait(5)

    thread = threading.Thread(target=write)
    thread.start()
    assert holding.wait(5)
    return thread


def test_a_read_does_not_wait_for_an_open_write(sqlite_sessions: sessionmaker[Session]) -> None:
    holding, go = threading.Event(), threading.Event()
    writer = hold_a_write(sqlite_sessions, "T1", holding, go)
    started = time.monotonic()
    with sqlite_sessions() as session:
        assert session.get(WorkspaceSettings, "T1") is None  # not committed yet
    waited = time.monotonic() - started
    go.set()
    writer.join()
    assert waited < 1.0


def test_a_transaction_that_reads_then_writes_waits_for_the_writer_instead_of_failing(
    sqlite_sessions: sessionmaker[Session],
) -> None:
    # With a deferred BEGIN the read would take a snapshot, and the write after the other
    # thread's commit would fail at once with "database is locked" (SQLITE_BUSY_SNAPSHOT).
    holding, go = threading.Event(), threading.Event()
    writer = hold_a_write(sqlite_sessions, "T1", holding, go)
    threading.Timer(0.2, go.set).start()
    with sqlite_sessions.begin() as session:
        seen = session.scalar(select(func.count()).select_from(WorkspaceSettings))
        session.add(WorkspaceSettings(team_id="T2", channel_defaults_admins_only=False))
    writer.join()
    assert seen == 1  # it began after the other transaction committed
    with sqlite_sessions() as session:
        assert session.scalar(select(func.count()).select_from(WorkspaceSettings)) == 2
