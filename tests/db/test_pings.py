"""Pooled PostgreSQL connections: pinged only after sitting idle, replaced when found cut."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from db import engine as engine_module
from db.engine import make_engine


@pytest.fixture
def pg(
    db_backend: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Engine, list[object]]]:
    """The bot's kind of engine on this test's database, and the pings it sends."""
    if db_backend != "postgresql":
        pytest.skip("connection pings are PostgreSQL's")
    engine = make_engine(db_url, pool_size=2, query_timeout=5)
    pings: list[object] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    yield engine, pings
    engine.dispose()


def cut_connections(db_url: str, engine: Engine) -> None:
    """End every server session of `engine`'s pool, as a restart or a failover would."""
    with engine.connect() as connection:
        pid = connection.scalar(text("SELECT pg_backend_pid()"))
    admin = create_engine(db_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    with admin.connect() as connection:
        ended = connection.scalar(text("SELECT count(pg_terminate_backend(:pid))"), {"pid": pid})
    admin.dispose()
    assert ended == 1


def test_a_connection_in_steady_use_is_not_pinged(pg: tuple[Engine, list[object]]) -> None:
    engine, pings = pg
    for _ in range(5):
        with engine.connect() as connection:
            connection.execute(text("SELECT 42"))
    assert pings == []


def test_a_connection_idle_a_while_is_pinged_first(
    pg: tuple[Engine, list[object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, pings = pg
    monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.2)
    with engine.connect() as connection:
        connection.execute(text("SELECT 42"))
    time.sleep(0.3)
    with engine.connect() as connection:
        connection.execute(text("SELECT 42"))
    assert len(pings) == 1


def test_a_connection_cut_while_idle_is_replaced_unseen(
    pg: tuple[Engine, list[object]], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, _ = pg
    monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.2)
    cut_connections(db_url, engine)
    time.sleep(0.3)  # idle long enough to be pinged before use
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT 42")) == 42


def test_a_connection_cut_moments_ago_fails_once_then_all_are_replaced(
    pg: tuple[Engine, list[object]], db_url: str
) -> None:
    engine, _ = pg
    cut_connections(db_url, engine)
    with pytest.raises(OperationalError), engine.connect() as connection:
        connection.execute(text("SELECT 42"))
    with engine.connect() as connection:  # the pool replaced what it held
        assert connection.scalar(text("SELECT 42")) == 42
